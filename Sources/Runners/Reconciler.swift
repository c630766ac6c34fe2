import GitHub
import Kubernetes
import Logging
import Observability
import ServiceLifecycle
import Support
import Synchronization

/// The level-triggered backstop for lost deliveries, and the reapers: GitHub never redelivers a failed webhook, so
/// every `interval` the leader lists the queued jobs of every known repository — including queued jobs inside runs
/// that are already `in_progress` — and provisions those that match, are older than `grace` (so it never races the
/// webhook path) and have no runner that can still take them. Through the same provisioner as a delivery, so it is
/// just as idempotent.
///
/// It spends GitHub's rate limit carefully: conditional requests (a 304 is free), a cycle stops when
/// `x-ratelimit-remaining` falls under `reserve` (kept for webhook deliveries), at most `maxProvisionsPerCycle`
/// runners per cycle (GitHub's secondary limit is 80 content-creating requests a minute), and the interval
/// doubles, up to `maxInterval`, while nothing is found.
///
/// Every destructive action needs proof, not a pattern: the object carries this deployment's marker (the
/// registration's `ownerLabel`, the Job's instance label, as listed by selector), the exact link to what it serves
/// (the registration recorded on the Job's Secret; the Job's uid as a delete precondition), and a fresh look at
/// GitHub just before, showing that no runner is at work on it. Leadership is checked before each mutating call.
/// Every deadline runs from when this process first saw the state (monotonic), never from an API server's time.
package final class Reconciler: Service {
    package struct Configuration: Sendable {
        package var interval: Duration = .seconds(60)
        package var maxInterval: Duration = .seconds(300)
        package var grace: Duration = .seconds(60)
        package var reserve: Int64 = 500
        package var maxProvisionsPerCycle = 20
        /// Queued longer than this counts in `reconciler_jobs_queued_too_long`.
        package var tooLong: Duration = .seconds(300)
        /// A pod still failing to pull its image (or to create its container) this long after it was first seen is
        /// removed.
        package var podStartDeadline: Duration = .seconds(300)
        /// A pod the scheduler cannot place for this long is removed.
        package var unschedulableDeadline: Duration = .seconds(600)
        /// A dind sidecar not ready this long after its pod was first seen is removed (its startup probe gives
        /// dockerd 120 s).
        package var dindReadyDeadline: Duration = .seconds(300)
        /// A registration still offline this long after its runner container was first seen running never
        /// connected: it and its Job are removed.
        package var connectDeadline: Duration = .seconds(600)
        /// After a Job was removed because its pod could not run, the job is not provisioned again for this long.
        package var failureHoldOff: Duration = .seconds(900)
        /// A registered runner with nothing to do for this long is removed (unless a queued job needs it).
        package var idleTimeout: Duration = .seconds(600)
        /// A runner Job still without its Secret this long after it was first seen was interrupted (a live
        /// provisioning finishes within the 8 s webhook deadline); it is removed. Also how long a registration of
        /// ours recorded on no Job must have been seen before it is deleted as a leftover.
        package var secretDeadline: Duration = .seconds(30)
        /// Runner Jobs of one job, counting replacements of finished ones (`-r<attempt>`), beyond which the
        /// reconciler stops replacing (a runner that keeps exiting before it connects is a broken setup).
        package var maxAttempts = 5

        package init() {}
    }

    let configuration: Configuration
    let github: any GitHubAPI
    let rateLimitRemaining: @Sendable () -> Int64?
    let kubernetes: any KubernetesAPI
    let namespace: String
    let ownerLabel: String
    let provisioner: any RunnerProvisioner
    let matcher: LabelMatcher
    let repositories: RepositoryRegistry
    let isLeader: @Sendable () -> Bool
    let clock: MonotonicClock
    let metrics: Metrics
    let logger: Logger

    struct State {
        /// Job id → until when it is not provisioned again, and why (its previous pod could not run).
        var heldOff: [String: (until: MonotonicClock.Instant, reason: String)] = [:]
        /// A rule's key (`idle:<runner id>`, `pull:<pod uid>`, …) → when this process first saw that state.
        var firstSeen: [String: MonotonicClock.Instant] = [:]
    }

    let state = Mutex(State())

    package init(
        configuration: Configuration,
        github: any GitHubAPI,
        rateLimitRemaining: @escaping @Sendable () -> Int64?,
        kubernetes: any KubernetesAPI,
        namespace: String,
        ownerLabel: String,
        provisioner: any RunnerProvisioner,
        matcher: LabelMatcher,
        repositories: RepositoryRegistry,
        isLeader: @escaping @Sendable () -> Bool,
        clock: some Clock<Duration> = ContinuousClock(),
        metrics: Metrics,
        logger: Logger
    ) {
        self.configuration = configuration
        self.github = github
        self.rateLimitRemaining = rateLimitRemaining
        self.kubernetes = kubernetes
        self.namespace = namespace
        self.ownerLabel = ownerLabel
        self.provisioner = provisioner
        self.matcher = matcher
        self.repositories = repositories
        self.isLeader = isLeader
        self.clock = MonotonicClock(clock)
        self.metrics = metrics
        self.logger = logger
    }

    package func run() async throws {
        var interval = configuration.interval
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let pause = interval
            try? await cancelWhenGracefulShutdown { try await self.clock.sleep(for: pause) }
            guard !Task.isCancelled && !Task.isShuttingDownGracefully else { break }
            guard isLeader() else {
                metrics.countReconcilerCycle("skipped")
                interval = configuration.interval
                stepDown()
                continue
            }
            let summary = await cycle()
            interval = summary.queued == 0 ? min(interval * 2, configuration.maxInterval) : configuration.interval
        }
    }

    /// Forgets what this replica saw while it led: a later term starts its rules' clocks afresh (an instant from an
    /// earlier term would make a rule fire at once), and its gauges no longer report a state the leader owns.
    func stepDown() {
        state.withLock { state in
            state.firstSeen.removeAll()
        }
        metrics.setJobsWaiting(reason: "quota", 0)
        metrics.setJobsWaiting(reason: "refused", 0)
    }

    package struct Summary: Sendable, Equatable {
        package var repositories = 0
        package var queued = 0
        package var recovered = 0
        package var result = "ok"
    }

    /// Thrown before a mutating call once this replica no longer holds the Lease: the cycle stops there.
    struct LostLeadership: Error {}

    /// Everything one cycle saw, listed before anything is changed.
    struct World {
        var repositories: [RepositoryRegistry.Repository] = []
        /// Per repository whose list answered: its registrations.
        var registrations: [RepositoryRegistry.Repository: [RegisteredRunner]] = [:]
        var jobs: [JobSummary] = []
        /// Job name → the registration recorded on its Secret (the Secret owned by that very Job).
        var records: [String: (id: Int64, name: String)] = [:]
        var secretNames: Set<String> = []
        var pods: [PodSummary]? = nil
        var events: [JobEvent]? = nil
        /// Per repository whose jobs were listed: queued jobs, and jobs in progress (with their runner's name).
        var queued: [RepositoryRegistry.Repository: [GitHubJob]] = [:]
        var running: [RepositoryRegistry.Repository: [GitHubJob]] = [:]

        /// Repositories whose list reached `GitHubListing.limit`: more registrations may exist than were seen.
        var truncated: Set<RepositoryRegistry.Repository> = []
        /// Repositories whose runs or a run's jobs reached `GitHubListing.limit`: queued jobs may exist that were not seen, so
        /// no runner there is known to be surplus.
        var demandCut: Set<RepositoryRegistry.Repository> = []

        /// Every known repository's registrations were listed in full: a registration found in none is gone.
        var listedEveryRepository: Bool { registrations.count == repositories.count && truncated.isEmpty }

        /// A registration of this deployment by id, with its repository.
        func registration(id: Int64) -> (RepositoryRegistry.Repository, RegisteredRunner)? {
            for (repository, runners) in registrations {
                if let runner = runners.first(where: { $0.id == id }) { return (repository, runner) }
            }
            return nil
        }
    }

    /// One pass over every known repository.
    @discardableResult
    package func cycle() async -> Summary {
        var summary = Summary()
        let world: World
        do {
            world = try await observe(summary: &summary)
        } catch {
            logger.warning("reconciler: cannot list runner jobs; cycle skipped", metadata: ["error": "\(error)"])
            metrics.countReconcilerCycle("failed")
            return Summary(result: "failed")
        }
        var touched: Set<String> = []
        do throws(LostLeadership) {
            try await act(on: world, summary: &summary, touched: &touched)
        } catch {
            logger.warning("reconciler: this replica no longer leads; cycle stopped before its next change")
            summary.result = "partial"
        }
        state.withLock { state in state.firstSeen = state.firstSeen.filter { touched.contains($0.key) } }
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

    // MARK: - Observing

    /// Lists registrations first, then Jobs, Secrets, pods and events, then the queued jobs.
    func observe(summary: inout Summary) async throws(KubernetesAPIError) -> World {
        var world = World()
        world.repositories = await repositories.all()
        for repository in world.repositories {
            if let remaining = rateLimitRemaining(), remaining < configuration.reserve { break }
            if let runners = try? await github.runners(owner: repository.owner, repo: repository.name) {
                world.registrations[repository] = runners
                if runners.count >= GitHubListing.limit { world.truncated.insert(repository) }
            }
        }
        let selector = RunnerJob.selector(ownerLabel: ownerLabel)
        world.jobs = try await kubernetes.listJobs(namespace: namespace, labelSelector: selector, limit: nil)
        let secrets = try await kubernetes.listSecrets(namespace: namespace, labelSelector: selector)
        let uids = Dictionary(world.jobs.map { ($0.name, $0.uid) }, uniquingKeysWith: { first, _ in first })
        for secret in secrets {
            world.secretNames.insert(secret.name)
            // The record counts only on the Secret owned by that very Job.
            guard let jobUID = uids[secret.name], secret.ownerUID == nil || secret.ownerUID == jobUID,
                let id = secret.labels[RunnerJob.runnerIDLabel].flatMap({ Int64($0) }),
                let name = secret.labels[RunnerJob.runnerNameLabel]
            else { continue }
            world.records[secret.name] = (id, name)
        }
        world.pods = try? await kubernetes.listPods(namespace: namespace, labelSelector: selector)
        if let pods = world.pods {
            // A metadata-only Job list tells only which Jobs succeeded. A runner Job has one try (backoffLimit 0), so
            // one whose every pod's runner container has ended is over, failed or not.
            let podsByJob = Dictionary(grouping: pods.filter { $0.jobName != nil }) { $0.jobName! }
            for index in world.jobs.indices where !world.jobs[index].isFinished {
                guard let own = podsByJob[world.jobs[index].name], !own.isEmpty else { continue }
                if own.allSatisfy({ $0.runnerContainer?.isTerminated == true }) { world.jobs[index].isFinished = true }
            }
        }
        world.events = try? await kubernetes.listFailedCreateEvents(namespace: namespace)

        for repository in world.repositories {
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
            do {
                let (queued, running, complete) = try await jobs(in: repository)
                world.queued[repository] = queued
                world.running[repository] = running
                if !complete { world.demandCut.insert(repository) }
            } catch {
                logger.warning(
                    "reconciler: listing queued jobs failed",
                    metadata: ["repo": "\(repository)", "error": "\(error)"]
                )
                summary.result = "partial"
                if error.kind == .rateLimited { break }
            }
        }
        return world
    }

    /// Queued jobs of queued runs and of in-progress runs (a multi-job run whose first jobs already started), and
    /// the jobs in progress (which runner took which job).
    /// `complete` is false when a list reached `GitHubListing.limit`: more runs or jobs may wait than were seen.
    func jobs(
        in repository: RepositoryRegistry.Repository
    ) async throws(GitHubAPIError) -> (queued: [GitHubJob], running: [GitHubJob], complete: Bool) {
        var queued: [GitHubJob] = []
        var running: [GitHubJob] = []
        var complete = true
        for status in ["queued", "in_progress"] {
            let runs = try await github.runs(owner: repository.owner, repo: repository.name, status: status)
            if runs.count >= GitHubListing.limit { complete = false }
            for run in runs {
                let jobs = try await github.jobs(owner: repository.owner, repo: repository.name, runID: run.id)
                if jobs.count >= GitHubListing.limit { complete = false }
                for job in jobs {
                    if job.status == "queued" { queued.append(job) }
                    if job.status == "in_progress" { running.append(job) }
                }
            }
        }
        return (queued, running, complete)
    }

    // MARK: - Acting

    func act(on world: World, summary: inout Summary, touched: inout Set<String>) async throws(LostLeadership) {
        let now = clock.now
        func seenFor(_ key: String) -> Duration {
            touched.insert(key)
            return now
                - state.withLock { state in
                    state.firstSeen[key]
                        ?? {
                            state.firstSeen[key] = now; return now
                        }()
                }
        }
        var removed: Set<String> = []  // Job names removed this cycle

        // 1. Jobs whose pod cannot run, or must wait.
        var waitingForQuota = 0
        var waitingRefused = 0
        for job in world.jobs where !job.isFinished {
            switch verdict(for: job, in: world, seenFor: seenFor) {
            case .none:
                continue
            case .wait(let reason, let detail):
                waitingForQuota += reason == "quota" ? 1 : 0
                waitingRefused += reason == "refused" ? 1 : 0
                if seenFor("waiting-logged:\(job.uid ?? job.name)") == .zero {
                    logger.notice(
                        "reaper: runner job waits; kept",
                        metadata: ["runner_job": "\(job.name)", "reason": "\(reason)", "detail": "\(detail)"]
                    )
                }
            case .reap(let reason, let detail):
                if try await remove(job, reason: reason, detail: detail, in: world) {
                    removed.insert(job.name)
                    if let id = job.labels[RunnerJob.jobIDLabel] {
                        state.withLock { $0.heldOff[id] = (now + configuration.failureHoldOff, reason) }
                    }
                }
            }
        }
        metrics.setJobsWaiting(reason: "quota", Int64(waitingForQuota))
        metrics.setJobsWaiting(reason: "refused", Int64(waitingRefused))

        // 2. Interrupted provisionings: a Job that never got its Secret.
        for job in world.jobs where !job.isFinished && !world.secretNames.contains(job.name) {
            guard !removed.contains(job.name),
                seenFor("no-secret:\(job.uid ?? job.name)") >= configuration.secretDeadline
            else { continue }
            if try await remove(
                job,
                reason: "no_secret",
                detail: "its provisioning was interrupted (no JIT secret)",
                in: world
            ) {
                removed.insert(job.name)
            }
        }

        // 3. Registrations of ours recorded on no Job: leftovers of a failed-but-effective JIT call, of an
        //    interrupted provisioning, or of a Job that is gone.
        let recordedIDs = Set(world.records.values.map(\.id))
        let liveJobNames = Set(world.jobs.filter { !$0.isFinished && !removed.contains($0.name) }.map(\.name))
        for (repository, runners) in world.registrations.sorted(by: { $0.key.description < $1.key.description }) {
            for runner in runners where isOurs(runner) && !recordedIDs.contains(runner.id) && runner.busy != true {
                guard let name = RunnerName(parsing: runner.name, as: .registration),
                    seenFor("unrecorded:\(runner.id)") >= configuration.secretDeadline
                else { continue }
                let reason = liveJobNames.contains(name.jobName) ? "leftover_registration" : "orphan_registration"
                _ = try await removeRegistration(runner, in: repository, reason: reason)
            }
        }

        // 4. Runners that exited without taking a job (their Job finished, or their runner container ended, and
        //    the registration is still there), and registrations still offline long after their pod started.
        for job in world.jobs where !removed.contains(job.name) {
            guard let record = world.records[job.name], let (repository, runner) = world.registration(id: record.id),
                runner.busy != true, isOurs(runner)
            else { continue }
            let pods = world.pods?.filter { $0.jobName == job.name } ?? []
            let exited = job.isFinished || pods.contains { $0.runnerContainer?.isTerminated == true }
            // Offline while its runner container runs, for the connect deadline: the clock starts when it is first
            // seen so and starts over whenever it is seen online (a runner that connected and dropped for a moment
            // is not one that never connected).
            let running = pods.contains { $0.runnerContainer?.isRunning == true }
            let offlineKey = "offline:\(runner.id)"
            if runner.status == "online" || !running {
                state.withLock { _ = $0.firstSeen.removeValue(forKey: offlineKey) }
            }
            let offlineLong =
                running && runner.status != "online" && seenFor(offlineKey) >= configuration.connectDeadline
            let reason: String
            if exited {
                reason = "runner_exited"
            } else if offlineLong {
                reason = "never_connected"
            } else {
                continue
            }
            let removal = try await removeRegistration(
                runner,
                in: repository,
                reason: reason,
                onlyIfOffline: reason == "never_connected"
            )
            guard removal == .deleted else { continue }
            if !job.isFinished {
                try fence()
                if await deleteJob(
                    job,
                    reason: reason,
                    detail: "its runner \(runner.name) never took a job",
                    count: false
                ) {
                    removed.insert(job.name)
                }
            }
        }

        // 5. Supply and demand per repository: queued jobs get their own idle runner, else a spare that fits; the
        //    rest are provisioned; idle runners no queued job needs are reaped after the idle timeout.
        var tooLong = 0
        var provisioned = 0
        for repository in world.repositories {
            guard let queued = world.queued[repository] else { continue }
            let runners = world.registrations[repository]
            let plan = Self.plan(
                queued: queued,
                running: world.running[repository] ?? [],
                runners: runners ?? [],
                // A Job removed this cycle counts as finished: its replacement takes the next name, since its Secret
                // may outlive it for a moment (the garbage collector deletes it in the background).
                jobs: world.jobs.map { job in
                    var job = job
                    if removed.contains(job.name) { job.isFinished = true }
                    return job
                },
                records: world.records,
                isOurs: isOurs,
                // A registration missing from a list cut at its limit may be further on: not known to be gone.
                isYoung: { world.truncated.contains(repository) || seenFor("young:\($0)") < configuration.grace }
            )
            for job in queued where matcher.matches(job.labels) {
                summary.queued += 1
                let age = job.createdAt.flatMap(Timestamps.parse).map { Timestamps.now() - $0 } ?? 0
                if age >= Double(configuration.tooLong.components.seconds) { tooLong += 1 }
            }
            // Without the registrations, supply is unknown: provision only jobs with no runner Job at all.
            for need in plan.unserved where matcher.matches(need.job.labels) {
                guard runners != nil || need.request == nil else { continue }
                let id = String(need.job.id)
                if let hold = state.withLock({ $0.heldOff[id] }), now < hold.until {
                    logger.info(
                        "reconciler: not provisioning again yet; its last runner could not run",
                        metadata: ["repo": "\(repository)", "job.id": "\(id)", "reason": "\(hold.reason)"]
                    )
                    continue
                }
                let age = need.job.createdAt.flatMap(Timestamps.parse).map { Timestamps.now() - $0 } ?? 0
                // The webhook path goes first; a job whose runner Job exists but cannot serve it is replaced at once.
                if need.request == nil && age < Double(configuration.grace.components.seconds) { continue }
                var request = RunnerRequest(
                    owner: repository.owner,
                    repository: repository.name,
                    jobID: need.job.id,
                    runID: need.job.runID ?? 0,
                    jobName: need.job.name ?? "",
                    labels: need.job.labels,
                    deliveryID: nil
                )
                if let name = need.request {
                    if need.takerUnknown {
                        logger.info(
                            "reconciler: the runner made for this job took another; which one is not known yet",
                            metadata: ["repo": "\(repository)", "job.id": "\(id)"]
                        )
                        continue
                    }
                    guard name.attempt <= configuration.maxAttempts else {
                        logger.warning(
                            "reconciler: runners of this job keep exiting before taking it; not replaced again",
                            metadata: ["repo": "\(repository)", "job.id": "\(id)", "attempts": "\(name.attempt - 1)"]
                        )
                        continue
                    }
                    request.replacing = name.after
                    request.attempt = name.attempt
                }
                guard provisioned < configuration.maxProvisionsPerCycle else {
                    summary.result = "partial"
                    break
                }
                provisioned += 1
                try fence()
                await recover(request, in: repository, age: age, summary: &summary)
            }
            // Idle runners nobody needs, after the idle timeout; none while some demand may not have been seen.
            guard let runners, !world.demandCut.contains(repository) else { continue }
            for runner in runners where isOurs(runner) {
                guard runner.busy != true, let job = plan.recordedOn[runner.id] else { continue }
                let idle = seenFor("idle:\(runner.id)")
                guard !plan.needed.contains(runner.id), idle >= configuration.idleTimeout else { continue }
                let outcome = try await removeRegistration(runner, in: repository, reason: "idle")
                // The idle rule removes a Job only when the registration recorded on it is the one it deleted.
                guard outcome == .deleted, world.records[job.name]?.id == runner.id else { continue }
                try fence()
                _ = await deleteJob(
                    job,
                    reason: "idle",
                    detail: "idle \(idle.components.seconds) s; no queued job needs it",
                    count: false
                )
            }
        }
        metrics.jobsQueuedTooLong.set(Int64(tooLong))
    }
}
