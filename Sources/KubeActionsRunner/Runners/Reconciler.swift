import Logging
import ServiceLifecycle

/// The level-triggered backstop for lost deliveries: GitHub never redelivers a failed webhook, so every
/// `interval` the leader lists the queued jobs of every known repository — including queued jobs inside runs that
/// are already `in_progress` — and provisions those that match, are older than `grace` (so it never races the
/// webhook path) and have no runner Job. Through the same provisioner as a delivery, so it is just as idempotent.
///
/// It spends GitHub's rate limit carefully: conditional requests (a 304 is free), a cycle stops when
/// `x-ratelimit-remaining` falls under `reserve` (kept for webhook deliveries), at most `maxProvisionsPerCycle`
/// runners per cycle (GitHub's secondary limit is 80 content-creating requests a minute), and the interval
/// doubles, up to `maxInterval`, while nothing is found.
public final class Reconciler: Service {
    public struct Configuration: Sendable {
        public var interval: Duration = .seconds(60)
        public var maxInterval: Duration = .seconds(300)
        public var grace: Duration = .seconds(60)
        public var reserve: Int64 = 500
        public var maxProvisionsPerCycle = 20
        /// Queued longer than this counts in `reconciler_jobs_queued_too_long`.
        public var tooLong: Duration = .seconds(300)

        public init() {}
    }

    private let configuration: Configuration
    private let github: any GitHubAPI
    private let rateLimitRemaining: @Sendable () -> Int64?
    private let kubernetes: any KubernetesAPI
    private let namespace: String
    private let provisioner: any RunnerProvisioner
    private let matcher: LabelMatcher
    private let repositories: RepositoryRegistry
    private let isLeader: @Sendable () -> Bool
    private let metrics: Metrics
    private let logger: Logger

    public init(
        configuration: Configuration, github: any GitHubAPI, rateLimitRemaining: @escaping @Sendable () -> Int64?,
        kubernetes: any KubernetesAPI, namespace: String, provisioner: any RunnerProvisioner, matcher: LabelMatcher,
        repositories: RepositoryRegistry, isLeader: @escaping @Sendable () -> Bool, metrics: Metrics, logger: Logger
    ) {
        self.configuration = configuration
        self.github = github
        self.rateLimitRemaining = rateLimitRemaining
        self.kubernetes = kubernetes
        self.namespace = namespace
        self.provisioner = provisioner
        self.matcher = matcher
        self.repositories = repositories
        self.isLeader = isLeader
        self.metrics = metrics
        self.logger = logger
    }

    public func run() async throws {
        var interval = configuration.interval
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let pause = interval
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
            guard !Task.isCancelled && !Task.isShuttingDownGracefully else { break }
            guard isLeader() else {
                metrics.countReconcilerCycle("skipped")
                interval = configuration.interval
                continue
            }
            let summary = await cycle()
            interval = summary.queued == 0 ? min(interval * 2, configuration.maxInterval) : configuration.interval
        }
    }

    public struct Summary: Sendable, Equatable {
        public var repositories = 0
        public var queued = 0
        public var recovered = 0
        public var result = "ok"
    }

    /// One pass over every known repository.
    @discardableResult
    public func cycle() async -> Summary {
        var summary = Summary()
        let now = Timestamps.now()
        let existing: Set<String>
        do {
            let jobs = try await kubernetes.listJobs(namespace: namespace, labelSelector: ClusterMonitor.labelSelector, limit: nil)
            existing = Set(jobs.compactMap { $0.labels["kube-actions-runner/job-id"] ?? jobIDFromName($0.name) })
        } catch {
            logger.warning("reconciler: cannot list runner jobs; cycle skipped", metadata: ["error": "\(error)"])
            metrics.countReconcilerCycle("failed")
            return Summary(result: "failed")
        }
        var tooLong = 0
        var provisioned = 0
        repositories: for repository in await repositories.all() {
            summary.repositories += 1
            if let remaining = rateLimitRemaining(), remaining < configuration.reserve {
                logger.warning(
                    "reconciler: GitHub rate limit under the reserve; cycle stopped",
                    metadata: ["remaining": "\(remaining)", "reserve": "\(configuration.reserve)"])
                metrics.countReserveHit()
                summary.result = "partial"
                break
            }
            let queued: [GitHubJob]
            do {
                queued = try await queuedJobs(in: repository)
            } catch {
                logger.warning(
                    "reconciler: listing queued jobs failed", metadata: ["repo": "\(repository)", "error": "\(error)"])
                summary.result = "partial"
                if error.kind == .rateLimited { break }
                continue
            }
            for job in queued where matcher.matches(job.labels) {
                summary.queued += 1
                let age = job.createdAt.flatMap(Timestamps.parse).map { now - $0 } ?? 0
                if age >= Double(configuration.tooLong.components.seconds) { tooLong += 1 }
                guard !existing.contains(String(job.id)) else { continue }
                guard age >= Double(configuration.grace.components.seconds) else { continue }
                guard provisioned < configuration.maxProvisionsPerCycle else {
                    summary.result = "partial"
                    break repositories
                }
                provisioned += 1
                await recover(job, in: repository, age: age, summary: &summary)
            }
        }
        metrics.jobsQueuedTooLong.set(Int64(tooLong))
        metrics.countReconcilerCycle(summary.result)
        logger.info(
            "reconciler cycle",
            metadata: [
                "repositories": "\(summary.repositories)", "queued": "\(summary.queued)", "recovered": "\(summary.recovered)",
                "result": "\(summary.result)",
            ])
        return summary
    }

    /// Queued jobs of queued runs, and of in-progress runs (a multi-job run whose first jobs already started).
    private func queuedJobs(in repository: RepositoryRegistry.Repository) async throws(GitHubAPIError) -> [GitHubJob] {
        var jobs: [GitHubJob] = []
        for status in ["queued", "in_progress"] {
            for run in try await github.runs(owner: repository.owner, repo: repository.name, status: status) {
                jobs += try await github.jobs(owner: repository.owner, repo: repository.name, runID: run.id)
                    .filter { $0.status == "queued" }
            }
        }
        return jobs
    }

    private func recover(_ job: GitHubJob, in repository: RepositoryRegistry.Repository, age: Double, summary: inout Summary) async {
        let request = RunnerRequest(
            owner: repository.owner, repository: repository.name, jobID: job.id, runID: job.runID ?? 0,
            jobName: job.name ?? "", labels: job.labels, deliveryID: nil)
        let metadata: Logger.Metadata = [
            "repo": "\(repository)", "job.id": "\(job.id)", "queued_for_s": "\(Int(age))", "job.labels": "\(job.labels.joined(separator: ","))",
        ]
        do {
            switch try await provisioner.provision(request) {
            case .created(let name):
                summary.recovered += 1
                metrics.countRecovered()
                logger.notice(
                    "reconciler: provisioned a queued job the webhook path missed",
                    metadata: metadata.merging(["runner_job": "\(name)"]) { $1 })
            case .alreadyProvisioned, .notQueued:
                break
            }
        } catch {
            logger.warning("reconciler: provisioning failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
        }
    }

    private func jobIDFromName(_ name: String) -> String? {
        name.hasPrefix("runner-") ? String(name.dropFirst("runner-".count).prefix { $0.isNumber }) : nil
    }
}
