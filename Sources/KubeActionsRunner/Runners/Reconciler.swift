import Logging
import ServiceLifecycle
import Synchronization

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
        /// A pod still failing to pull its image (or to create its container) this long after creation is removed.
        public var podStartDeadline: Duration = .seconds(300)
        /// A pod the scheduler cannot place for this long is removed.
        public var unschedulableDeadline: Duration = .seconds(600)
        /// After a Job was removed because its pod could not run, the job is not provisioned again for this long.
        public var failureHoldOff: Duration = .seconds(900)
        /// A registered runner with nothing to do for this long is removed (unless a queued job could use it).
        public var idleTimeout: Duration = .seconds(600)
        /// A runner Job still without its Secret this long after creation was interrupted (a live provisioning
        /// finishes within the 8 s webhook deadline); it is removed.
        public var secretDeadline: Duration = .seconds(30)

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
    /// Job id → until when it is not provisioned again, and why (its previous pod could not run).
    private let heldOff = Mutex<[String: (until: ContinuousClock.Instant, reason: String)]>([:])
    /// Registration id → when this leader first saw it idle (monotonic).
    private let idleSince = Mutex<[Int64: ContinuousClock.Instant]>([:])

    public init(
        configuration: Configuration,
        github: any GitHubAPI,
        rateLimitRemaining: @escaping @Sendable () -> Int64?,
        kubernetes: any KubernetesAPI,
        namespace: String,
        provisioner: any RunnerProvisioner,
        matcher: LabelMatcher,
        repositories: RepositoryRegistry,
        isLeader: @escaping @Sendable () -> Bool,
        metrics: Metrics,
        logger: Logger
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
        let known = await repositories.all()
        // Registrations first, then Jobs: a Job is always created before its registration, so every
        // registration seen here has its Job in the list below unless that Job is really gone.
        var registrations: [(RepositoryRegistry.Repository, [RegisteredRunner])] = []
        for repository in known {
            if let remaining = rateLimitRemaining(), remaining < configuration.reserve { break }
            if let runners = try? await github.runners(owner: repository.owner, repo: repository.name) {
                registrations.append((repository, runners))
            }
        }
        var existing: Set<String>
        do {
            let jobs = try await kubernetes.listJobs(
                namespace: namespace,
                labelSelector: ClusterMonitor.labelSelector,
                limit: nil
            )
            let secrets = Set(
                try await kubernetes.listSecretNames(namespace: namespace, labelSelector: ClusterMonitor.labelSelector)
            )
            existing = Set(jobs.compactMap { $0.labels["kube-actions-runner/job-id"] ?? jobIDFromName($0.name) })
            for job in jobs where !job.isFinished && !secrets.contains(job.name) {
                // A provisioning that was interrupted (the process killed between the Job and its Secret).
                guard let created = job.createdAt,
                    now - created > Double(configuration.secretDeadline.components.seconds)
                else { continue }
                await reap(job: job.name, reason: "no_secret")
                if let id = job.labels["kube-actions-runner/job-id"] ?? jobIDFromName(job.name) { existing.remove(id) }
            }
            for removed in await reapPodsThatCannotRun(jobs.filter { !$0.isFinished }, now: now) {
                existing.remove(removed)
            }
        } catch {
            logger.warning("reconciler: cannot list runner jobs; cycle skipped", metadata: ["error": "\(error)"])
            metrics.countReconcilerCycle("failed")
            return Summary(result: "failed")
        }
        for (repository, runners) in registrations {
            for runner in runners where runner.busy != true {
                guard let id = RunnerRequest.jobID(ofRunnerNamed: runner.name).map(String.init), !existing.contains(id)
                else { continue }
                await reap(registration: runner, in: repository)
            }
        }
        var tooLong = 0
        var provisioned = 0
        var queuedByRepository: [RepositoryRegistry.Repository: [GitHubJob]] = [:]
        repositories: for repository in known {
            summary.repositories += 1
            if let remaining = rateLimitRemaining(), remaining < configuration.reserve {
                logger.warning(
                    "reconciler: GitHub rate limit under the reserve; cycle stopped",
                    metadata: ["remaining": "\(remaining)", "reserve": "\(configuration.reserve)"]
                )
                metrics.countReserveHit()
                summary.result = "partial"
                break
            }
            let queued: [GitHubJob]
            do {
                queued = try await queuedJobs(in: repository)
            } catch {
                logger.warning(
                    "reconciler: listing queued jobs failed",
                    metadata: ["repo": "\(repository)", "error": "\(error)"]
                )
                summary.result = "partial"
                if error.kind == .rateLimited { break }
                continue
            }
            queuedByRepository[repository] = queued
            for job in queued where matcher.matches(job.labels) {
                summary.queued += 1
                let age = job.createdAt.flatMap(Timestamps.parse).map { now - $0 } ?? 0
                if age >= Double(configuration.tooLong.components.seconds) { tooLong += 1 }
                guard !existing.contains(String(job.id)) else { continue }
                if let hold = heldOff.withLock({ $0[String(job.id)] }), ContinuousClock.now < hold.until {
                    logger.info(
                        "reconciler: not provisioning again yet; its last runner could not run",
                        metadata: ["repo": "\(repository)", "job.id": "\(job.id)", "reason": "\(hold.reason)"]
                    )
                    continue
                }
                guard age >= Double(configuration.grace.components.seconds) else { continue }
                guard provisioned < configuration.maxProvisionsPerCycle else {
                    summary.result = "partial"
                    break repositories
                }
                provisioned += 1
                await recover(job, in: repository, age: age, summary: &summary)
            }
        }
        await reapIdleRunners(registrations, queued: queuedByRepository, jobs: existing)
        metrics.jobsQueuedTooLong.set(Int64(tooLong))
        metrics.countReconcilerCycle(summary.result)
        logger.info(
            "reconciler cycle",
            metadata: [
                "repositories": "\(summary.repositories)", "queued": "\(summary.queued)",
                "recovered": "\(summary.recovered)",
                "result": "\(summary.result)",
            ]
        )
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

    private func recover(
        _ job: GitHubJob,
        in repository: RepositoryRegistry.Repository,
        age: Double,
        summary: inout Summary
    ) async {
        let request = RunnerRequest(
            owner: repository.owner,
            repository: repository.name,
            jobID: job.id,
            runID: job.runID ?? 0,
            jobName: job.name ?? "",
            labels: job.labels,
            deliveryID: nil
        )
        let metadata: Logger.Metadata = [
            "repo": "\(repository)", "job.id": "\(job.id)", "queued_for_s": "\(Int(age))",
            "job.labels": "\(job.labels.joined(separator: ","))",
        ]
        do {
            switch try await provisioner.provision(request) {
            case .created(let name):
                summary.recovered += 1
                metrics.countRecovered()
                logger.notice(
                    "reconciler: provisioned a queued job the webhook path missed",
                    metadata: metadata.merging(["runner_job": "\(name)"]) { $1 }
                )
            case .alreadyProvisioned, .notQueued:
                break
            }
        } catch {
            logger.warning("reconciler: provisioning failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
        }
    }

    /// Runners idle for `idleTimeout` whose own job no longer waits and that no queued job of their repository
    /// could use are removed: the registration first (the runner process then exits), then the runner Job. A
    /// runner that turns out busy (422) stays. Repositories whose queued jobs are unknown this cycle are skipped.
    private func reapIdleRunners(
        _ registrations: [(RepositoryRegistry.Repository, [RegisteredRunner])],
        queued: [RepositoryRegistry.Repository: [GitHubJob]],
        jobs existing: Set<String>
    ) async {
        let now = ContinuousClock.now
        var seen: Set<Int64> = []
        for (repository, runners) in registrations {
            guard let waiting = queued[repository] else { continue }
            for runner in runners {
                guard let jobID = RunnerRequest.jobID(ofRunnerNamed: runner.name), existing.contains(String(jobID))
                else {
                    continue
                }
                seen.insert(runner.id)
                if runner.busy == true {
                    idleSince.withLock { $0[runner.id] = nil }
                    continue
                }
                let since = idleSince.withLock { idle in
                    idle[runner.id]
                        ?? {
                            idle[runner.id] = now; return now
                        }()
                }
                guard now - since >= configuration.idleTimeout else { continue }
                let labels = Set(runner.labels.map { $0.lowercased() })
                let usable = waiting.contains { job in
                    job.id == jobID || Set(job.labels.map { $0.lowercased() }).isSubset(of: labels)
                }
                guard !usable else { continue }
                let metadata: Logger.Metadata = [
                    "repo": "\(repository)", "runner.name": "\(runner.name)", "job.id": "\(jobID)",
                    "idle_s": "\((now - since).components.seconds)",
                ]
                do {
                    try await github.deleteRunner(owner: repository.owner, repo: repository.name, runnerID: runner.id)
                } catch  where error.kind == .validation {
                    logger.info("reaper: idle runner is busy after all; kept", metadata: metadata)
                    continue
                } catch  where error.kind != .notFound {
                    logger.warning(
                        "reaper: deleting an idle runner failed",
                        metadata: metadata.merging(["error": "\(error)"]) { $1 }
                    )
                    continue
                } catch {}
                idleSince.withLock { $0[runner.id] = nil }
                let jobName = String(runner.name.dropLast(6))  // the registration's name less "-<suffix>"
                try? await kubernetes.deleteJob(name: jobName, namespace: namespace)
                metrics.countReaped("idle")
                logger.notice("reaper: removed an idle runner no queued job can use", metadata: metadata)
            }
        }
        idleSince.withLock { idle in idle = idle.filter { seen.contains($0.key) } }
    }

    /// Jobs whose pod cannot run: the Job controller could not create it (`FailedCreate`: Pod Security, quota),
    /// its image cannot be pulled, or it cannot be scheduled, past a deadline. Each is reported with the reason,
    /// removed and counted, and its job is held off for `failureHoldOff` so a broken setup does not churn runners.
    /// Returns the job ids removed.
    private func reapPodsThatCannotRun(_ jobs: [JobSummary], now: Double) async -> [String] {
        let names = Set(jobs.map(\.name))
        var verdicts: [String: (reason: String, detail: String)] = [:]
        if let events = try? await kubernetes.listFailedCreateEvents(namespace: namespace) {
            for event in events where names.contains(event.jobName) {
                verdicts[event.jobName] = ("failed_create", event.message)
            }
        }
        if let pods = try? await kubernetes.listPods(namespace: namespace, labelSelector: "app=github-runner") {
            for pod in pods {
                guard let job = pod.jobName, names.contains(job), verdicts[job] == nil, let created = pod.createdAt
                else { continue }
                let age = now - created
                let pull = pod.waitingReasons.first {
                    ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerError"].contains($0)
                }
                if let pull, age > Double(configuration.podStartDeadline.components.seconds) {
                    verdicts[job] = ("image_pull", "pod \(pod.name): \(pull) for \(Int(age)) s")
                } else if let message = pod.unschedulable,
                    age > Double(configuration.unschedulableDeadline.components.seconds)
                {
                    verdicts[job] = ("unschedulable", "pod \(pod.name): unschedulable for \(Int(age)) s: \(message)")
                }
            }
        }
        var removed: [String] = []
        for (name, verdict) in verdicts.sorted(by: { $0.key < $1.key }) {
            await reap(job: name, reason: verdict.reason, detail: verdict.detail)
            let labels = jobs.first { $0.name == name }?.labels ?? [:]
            if let id = labels["kube-actions-runner/job-id"] ?? jobIDFromName(name) {
                heldOff.withLock { $0[id] = (ContinuousClock.now + configuration.failureHoldOff, verdict.reason) }
                removed.append(id)
            }
        }
        return removed
    }

    /// Removes a runner Job that can never run, saying why.
    private func reap(
        job name: String,
        reason: String,
        detail: String = "its provisioning was interrupted (no JIT secret)"
    )
        async
    {
        do {
            try await kubernetes.deleteJob(name: name, namespace: namespace)
            metrics.countReaped(reason)
            logger.warning(
                "reaper: removed a runner job that cannot run",
                metadata: ["runner_job": "\(name)", "reason": "\(reason)", "detail": "\(detail)"]
            )
        } catch {
            logger.warning(
                "reaper: removing a runner job failed",
                metadata: ["runner_job": "\(name)", "error": "\(error)"]
            )
        }
    }

    /// Deletes a registration whose runner Job is gone: no pod will ever use it.
    private func reap(registration runner: RegisteredRunner, in repository: RepositoryRegistry.Repository) async {
        let metadata: Logger.Metadata = [
            "repo": "\(repository)", "runner.id": "\(runner.id)", "runner.name": "\(runner.name)",
        ]
        do {
            try await github.deleteRunner(owner: repository.owner, repo: repository.name, runnerID: runner.id)
            metrics.countReaped("orphan_registration")
            logger.notice("reaper: deleted a runner registration without a runner job", metadata: metadata)
        } catch  where error.kind == .validation {
            logger.info("reaper: registration still busy; retried next cycle", metadata: metadata)
        } catch {
            logger.warning(
                "reaper: deleting a registration failed",
                metadata: metadata.merging(["error": "\(error)"]) { $1 }
            )
        }
    }

    private func jobIDFromName(_ name: String) -> String? {
        name.hasPrefix("runner-") ? String(name.dropFirst("runner-".count).prefix { $0.isNumber }) : nil
    }
}
