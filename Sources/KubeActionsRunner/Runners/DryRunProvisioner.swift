import Logging
import Synchronization

/// Renders what would be created instead of calling GitHub and Kubernetes (`DRY_RUN=true`, the demo).
///
/// It behaves like the real provisioner where it can: one runner Job per GitHub job (a second request
/// for the same job is `alreadyProvisioned`), and it reports the count in `runner_jobs_active`.
public final class DryRunProvisioner: RunnerProvisioner {
    /// What a real run would have sent: the Job, and the Secret with its JIT config redacted.
    public struct Rendered: Sendable {
        public var job: RunnerJob
        public var secret: JSONValue
    }

    private let settings: RunnerJob.Settings
    private let logger: Logger
    private let metrics: Metrics?
    private let rendered = Mutex<[Int64: Rendered]>([:])

    public init(settings: RunnerJob.Settings, logger: Logger, metrics: Metrics? = nil) {
        self.settings = settings
        self.logger = logger
        self.metrics = metrics
    }

    public func provision(_ request: RunnerRequest) async throws(ProvisioningError) -> ProvisionOutcome {
        let job = RunnerJob.render(for: request, settings: settings)
        let secret = job.secret(jitConfig: "<redacted: JIT config from GitHub>", jobUID: "<uid of the created Job>")
        let (inserted, count) = rendered.withLock { jobs -> (Bool, Int) in
            if jobs[request.jobID] != nil { return (false, jobs.count) }
            jobs[request.jobID] = Rendered(job: job, secret: secret)
            return (true, jobs.count)
        }
        guard inserted else { return .alreadyProvisioned(runnerJob: job.name) }
        metrics?.runnerJobsActive.set(Int64(count))
        logger.info(
            "dry run: runner job rendered, nothing created",
            metadata: ["runner_job": "\(job.name)", "namespace": "\(job.namespace)", "mode": "\(settings.mode)"]
        )
        logger.debug("dry run: job manifest", metadata: ["manifest": "\(job.job.rendered())"])
        return .created(runnerJob: job.name)
    }

    public func readiness() async -> Readiness { .ready }

    /// Everything rendered so far, by GitHub job id.
    public func renderedJobs() -> [Int64: Rendered] {
        rendered.withLock { $0 }
    }
}
