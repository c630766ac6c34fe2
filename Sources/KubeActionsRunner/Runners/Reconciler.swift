import Logging
import ServiceLifecycle
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
public final class Reconciler: Service {
    public struct Configuration: Sendable {
        public var interval: Duration = .seconds(60)
        public var maxInterval: Duration = .seconds(300)
        public var grace: Duration = .seconds(60)
        public var reserve: Int64 = 500
        public var maxProvisionsPerCycle = 20
        /// Queued longer than this counts in `reconciler_jobs_queued_too_long`.
        public var tooLong: Duration = .seconds(300)
        /// A pod still failing to pull its image (or to create its container) this long after it was first seen is
        /// removed.
        public var podStartDeadline: Duration = .seconds(300)
        /// A pod the scheduler cannot place for this long is removed.
        public var unschedulableDeadline: Duration = .seconds(600)
        /// A dind sidecar not ready this long after its pod was first seen is removed (its startup probe gives
        /// dockerd 120 s).
        public var dindReadyDeadline: Duration = .seconds(300)
        /// A registration still offline this long after its runner container was first seen running never
        /// connected: it and its Job are removed.
        public var connectDeadline: Duration = .seconds(600)
        /// After a Job was removed because its pod could not run, the job is not provisioned again for this long.
        public var failureHoldOff: Duration = .seconds(900)
        /// A registered runner with nothing to do for this long is removed (unless a queued job needs it).
        public var idleTimeout: Duration = .seconds(600)
        /// A runner Job still without its Secret this long after it was first seen was interrupted (a live
        /// provisioning finishes within the 8 s webhook deadline); it is removed. Also how long a registration of
        /// ours recorded on no Job must have been seen before it is deleted as a leftover.
        public var secretDeadline: Duration = .seconds(30)
        /// Runner Jobs of one job, counting replacements of finished ones (`-r<attempt>`), beyond which the
        /// reconciler stops replacing (a runner that keeps exiting before it connects is a broken setup).
        public var maxAttempts = 5

        public init() {}
    }

    private let configuration: Configuration
    private let github: any GitHubAPI
    private let rateLimitRemaining: @Sendable () -> Int64?
    private let kubernetes: any KubernetesAPI
    private let namespace: String
    private let ownerLabel: String
    private let provisioner: any RunnerProvisioner
    private let matcher: LabelMatcher
    private let repositories: RepositoryRegistry
    private let isLeader: @Sendable () -> Bool
    private let clock: MonotonicClock
    private let metrics: Metrics
    private let logger: Logger

    private struct State {
        /// Job id → until when it is not provisioned again, and why (its previous pod could not run).
        var heldOff: [String: (until: ContinuousClock.Instant, reason: String)] = [:]
        /// A rule's key (`idle:<runner id>`, `pull:<pod uid>`, …) → when this process first saw that state.
        var firstSeen: [String: ContinuousClock.Instant] = [:]
    }

    private let state = Mutex(State())

    public init(
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
        clock: MonotonicClock = .continuous,
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
        self.clock = clock
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

    public struct Summary: Sendable, Equatable {
        public var repositories = 0
        public var queued = 0
        public var recovered = 0
        public var result = "ok"
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
    public func cycle() async -> Summary {
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
    private func observe(summary: inout Summary) async throws(KubernetesAPIError) -> World {
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
    private func jobs(
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

    private func act(on world: World, summary: inout Summary, touched: inout Set<String>) async throws(LostLeadership) {
        let now = clock.now()
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
            case .reap(let reason, let detail, let holdOff):
                if try await remove(job, reason: reason, detail: detail, in: world) {
                    removed.insert(job.name)
                    if holdOff, let id = job.labels[RunnerJob.jobIDLabel] {
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
            let runnerContainers = pods.flatMap(\.containers).filter { $0.name == "runner" && !$0.isInit }
            let exited = job.isFinished || runnerContainers.contains { $0.isTerminated }
            // Offline while its runner container runs, for the connect deadline: the clock starts when it is first
            // seen so and starts over whenever it is seen online (a runner that connected and dropped for a moment
            // is not one that never connected).
            let running = pods.contains { pod in
                pod.containers.contains { $0.name == "runner" && !$0.isInit && $0.isRunning }
            }
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

    // MARK: - Supply and demand

    /// What one repository's queued jobs need.
    struct Plan {
        struct Need {
            var job: GitHubJob
            /// Nil: the job has no runner Job at all. Else the name of the runner Job to make: a replacement for a
            /// runner that took another job, or the next attempt after Jobs that finished without taking it.
            var request: RunnerName?
            /// Its runner took another job, but which one is not known (not in the runs listed): wait.
            var takerUnknown = false
        }
        /// Registrations some queued job needs (its own, or a spare that fits it): not idle surplus.
        var needed: Set<Int64> = []
        var unserved: [Need] = []
        /// Registration id → the live runner Job recording it.
        var recordedOn: [Int64: JobSummary] = [:]
    }

    /// Runners are fungible: GitHub gives a queued job any idle runner of its repository whose labels fit. Each queued
    /// job first keeps its own idle runner (or a runner Job still being provisioned); then the others take spare
    /// idle runners that fit them, one each; what is left over is surplus, and the jobs left without are unserved.
    static func plan(
        queued: [GitHubJob],
        running: [GitHubJob],
        runners: [RegisteredRunner],
        jobs: [JobSummary],
        records: [String: (id: Int64, name: String)],
        isOurs: (RegisteredRunner) -> Bool,
        isYoung: (String) -> Bool
    ) -> Plan {
        var plan = Plan()
        let byID = Dictionary(runners.filter(isOurs).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for job in jobs where !job.isFinished {
            if let record = records[job.name] { plan.recordedOn[record.id] = job }
        }
        // Idle runners that can take a job: recorded on a live Job of ours, not busy.
        let idle = Set(plan.recordedOn.keys.filter { byID[$0].map { $0.busy != true } ?? false })
        var waiting: [GitHubJob] = []
        for job in queued.sorted(by: { $0.id < $1.id }) {
            let own = jobs.filter { $0.labels[RunnerJob.jobIDLabel] == String(job.id) }
            let live = own.filter { !$0.isFinished }
            if let mine = live.compactMap({ records[$0.name]?.id }).first(where: { idle.contains($0) }) {
                plan.needed.insert(mine)
                continue
            }
            // Still being provisioned: no registration recorded yet, or recorded but not listed yet.
            let pending = live.contains { job in
                guard let record = records[job.name] else { return true }
                return byID[record.id] == nil && isYoung(job.uid ?? job.name)
            }
            if !pending { waiting.append(job) }
        }
        var unserved: [GitHubJob] = []
        for job in waiting {
            let wanted = Set(job.labels.map { $0.lowercased() })
            let spare = idle.sorted().first { id in
                !plan.needed.contains(id) && wanted.isSubset(of: Set(byID[id]!.labels.map { $0.lowercased() }))
            }
            if let spare {
                plan.needed.insert(spare)
            } else {
                unserved.append(job)
            }
        }
        for job in unserved {
            let own = jobs.filter { $0.labels[RunnerJob.jobIDLabel] == String(job.id) }
            guard !own.isEmpty else {
                plan.unserved.append(Plan.Need(job: job, request: nil))
                continue
            }
            // A live Job whose runner is busy: it took another job; the replacement is named after that job, as the
            // in_progress delivery names it (so the two paths make one runner, never two).
            let names = Set(own.map(\.name))
            let busy = own.filter { !$0.isFinished }.compactMap { records[$0.name] }.filter {
                byID[$0.id]?.busy == true
            }
            if !busy.isEmpty {
                let replacements = busy.map { record in
                    running.first { $0.runnerName == record.name }.map { RunnerName(jobID: job.id, after: $0.id) }
                }
                if let next = replacements.compactMap({ $0 }).first(where: { !names.contains($0.jobName) }) {
                    plan.unserved.append(Plan.Need(job: job, request: next))
                    continue
                } else if replacements.contains(where: { $0 == nil }) {
                    plan.unserved.append(Plan.Need(job: job, request: RunnerName(jobID: job.id), takerUnknown: true))
                    continue
                }
                // That replacement was made already and finished without taking the job: the next attempt.
            }
            // Its Jobs finished (or lost their registration) without taking it: the next attempt, under a name no Job
            // of it has.
            let parsed = own.compactMap { RunnerName(parsing: $0.name, as: .job) }
            let latest = parsed.max { $0.attempt < $1.attempt } ?? RunnerName(jobID: job.id)
            var next = RunnerName(jobID: job.id, after: latest.after, attempt: latest.attempt + 1)
            while names.contains(next.jobName) { next.attempt += 1 }
            plan.unserved.append(Plan.Need(job: job, request: next))
        }
        return plan
    }

    // MARK: - Verdicts on pods

    enum Verdict {
        case none
        /// The pod must wait (an exceeded quota): the Job stays.
        case wait(reason: String, detail: String)
        /// The pod cannot run: the Job goes; `holdOff`: its job is not provisioned again for a while.
        case reap(reason: String, detail: String, holdOff: Bool)
    }

    /// Why a live Job's pod cannot run, or must wait, from its events (matched by the Job's uid, newer than its
    /// last pod) and its pods' states.
    private func verdict(for job: JobSummary, in world: World, seenFor: (String) -> Duration) -> Verdict {
        let pods = world.pods?.filter { $0.jobName == job.name } ?? []
        let lastPod = pods.compactMap(\.createdAt).max()
        // Without the pods, an event cannot be told from one older than the pod that now runs: none is read.
        let events = (world.pods == nil ? [] : world.events ?? []).filter { event in
            guard let uid = job.uid, event.jobUID == uid else { return false }
            guard let lastPod else { return true }
            return (event.lastSeen ?? -.infinity) > lastPod
        }
        if let event = events.max(by: { ($0.lastSeen ?? 0) < ($1.lastSeen ?? 0) }) {
            if Self.isQuota(event.message) {
                return .wait(reason: "quota", detail: event.message)
            }
            if Self.isPermanentRefusal(event.message) {
                return .reap(reason: "failed_create", detail: event.message, holdOff: true)
            }
            // Another refusal (an admission webhook that timed out, an API server too busy): the Job controller
            // retries, so it is a wait, until the pod start deadline.
            let seen = seenFor("refused:\(job.uid ?? job.name)")
            if seen >= configuration.podStartDeadline {
                return .reap(
                    reason: "failed_create",
                    detail: "pod refused for \(seen.components.seconds) s: \(event.message)",
                    holdOff: true
                )
            }
            return .wait(reason: "refused", detail: event.message)
        }
        for pod in pods {
            let key = pod.uid ?? pod.name
            for container in pod.containers {
                switch container.waitingReason {
                case "CrashLoopBackOff":
                    return .reap(
                        reason: "crash_loop",
                        detail: "pod \(pod.name): container \(container.name) in CrashLoopBackOff",
                        holdOff: true
                    )
                case "RunContainerError":
                    return .reap(
                        reason: "run_container_error",
                        detail: "pod \(pod.name): container \(container.name) cannot run (RunContainerError)",
                        holdOff: true
                    )
                default:
                    break
                }
            }
            let waiting = pod.containers.compactMap(\.waitingReason) + pod.waitingReasons
            if let pull = waiting.first(where: {
                ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerError"].contains($0)
            }) {
                let seen = seenFor("pull:\(key)")
                if seen >= configuration.podStartDeadline {
                    return .reap(
                        reason: "image_pull",
                        detail: "pod \(pod.name): \(pull) for \(seen.components.seconds) s",
                        holdOff: true
                    )
                }
            }
            if let message = pod.unschedulable {
                let seen = seenFor("unschedulable:\(key)")
                if seen >= configuration.unschedulableDeadline {
                    return .reap(
                        reason: "unschedulable",
                        detail: "pod \(pod.name): unschedulable for \(seen.components.seconds) s: \(message)",
                        holdOff: true
                    )
                }
            }
            if let dind = pod.containers.first(where: { $0.isInit && $0.name == "dind" }), !dind.isReady,
                !dind.isTerminated
            {
                let seen = seenFor("dind:\(key)")
                if seen >= configuration.dindReadyDeadline {
                    return .reap(
                        reason: "dind_not_ready",
                        detail: "pod \(pod.name): dockerd not ready after \(seen.components.seconds) s",
                        holdOff: true
                    )
                }
            }
        }
        return .none
    }

    /// `exceeded quota` is a ResourceQuota refusing the pod for now: it is a wait, not a failure.
    static func isQuota(_ message: String) -> Bool {
        message.contains("exceeded quota")
    }

    /// A refusal the same pod would meet again: Pod Security, an invalid spec, an admission denial, another
    /// `forbidden` (a missing service account, a quota that requires limits).
    static func isPermanentRefusal(_ message: String) -> Bool {
        message.contains("violates PodSecurity") || message.contains(" is invalid")
            || message.contains("is forbidden") || message.contains("denied the request")
    }

    // MARK: - Proven removals

    /// Whether the registration carries this deployment's marker and a name this service gives.
    private func isOurs(_ runner: RegisteredRunner) -> Bool {
        runner.carries(ownerLabel) && RunnerName(parsing: runner.name, as: .registration) != nil
    }

    private func fence() throws(LostLeadership) {
        guard isLeader() else { throw LostLeadership() }
    }

    /// The repository of a runner Job's recorded registration: where that registration was listed, else the one
    /// known repository its owner and repository labels name; nil when that cannot be told.
    private func repository(
        of job: JobSummary,
        registrationID: Int64,
        in world: World
    ) -> RepositoryRegistry.Repository? {
        if let (repository, _) = world.registration(id: registrationID) { return repository }
        let owner = job.labels[RunnerJob.ownerNameLabel]
        let name = job.labels[RunnerJob.repositoryNameLabel]
        let named = world.repositories.filter {
            RunnerJob.labelValue($0.owner) == owner && RunnerJob.labelValue($0.name) == name
        }
        return named.count == 1 ? named.first : nil
    }

    /// Removes a runner Job that cannot run, saying why. A Job with a registration recorded on it goes only after
    /// that registration did: a fresh look shows it ours and not busy, and GitHub, which refuses to delete a runner
    /// at work (422), deleted it, or it is gone. So a runner that takes a job between the look and the removal keeps
    /// its Job. Kept, too, when a registration of ours named for it is busy, or when its repository is not known.
    private func remove(
        _ job: JobSummary,
        reason: String,
        detail: String,
        in world: World
    ) async throws(LostLeadership) -> Bool {
        let metadata: Logger.Metadata = ["runner_job": "\(job.name)", "reason": "\(reason)"]
        let busyByName = world.registrations.values.joined().contains { runner in
            isOurs(runner) && runner.busy != false
                && RunnerName(parsing: runner.name, as: .registration)?.jobName == job.name
        }
        if busyByName {
            logger.notice("reaper: runner job kept; its runner is at work or cannot be checked", metadata: metadata)
            return false
        }
        guard let record = world.records[job.name] else {
            // No registration recorded on it: its provisioning never got that far, so no runner of it can work.
            try fence()
            return await deleteJob(job, reason: reason, detail: detail)
        }
        guard let repository = repository(of: job, registrationID: record.id, in: world) else {
            logger.notice("reaper: runner job kept; the repository of its runner is not known", metadata: metadata)
            return false
        }
        let listed = world.registration(id: record.id)?.1
        let runner = listed ?? RegisteredRunner(id: record.id, name: record.name, labels: [ownerLabel])
        switch try await removeRegistration(runner, in: repository, reason: reason) {
        case .deleted:
            try fence()
            return await deleteJob(job, reason: reason, detail: detail, count: false)
        case .gone:
            try fence()
            return await deleteJob(job, reason: reason, detail: detail)
        case .busy, .failed:
            logger.notice("reaper: runner job kept; its runner is at work or cannot be checked", metadata: metadata)
            return false
        }
    }

    /// Deletes exactly this Job (its uid as a precondition), counted under `reason` unless its registration was.
    private func deleteJob(_ job: JobSummary, reason: String, detail: String, count: Bool = true) async -> Bool {
        do {
            try await kubernetes.deleteJob(name: job.name, namespace: namespace, uid: job.uid)
            if count { metrics.countReaped(reason) }
            logger.warning(
                "reaper: removed a runner job",
                metadata: ["runner_job": "\(job.name)", "reason": "\(reason)", "detail": "\(detail)"]
            )
            return true
        } catch {
            logger.warning(
                "reaper: removing a runner job failed",
                metadata: ["runner_job": "\(job.name)", "reason": "\(reason)", "error": "\(error)"]
            )
            return false
        }
    }

    enum RegistrationRemoval: Equatable { case deleted, busy, gone, failed }

    /// Deletes a registration of this deployment after a fresh look shows it still exists, still carries the
    /// marker and is not busy. GitHub refuses to delete a runner at work (422), which keeps it.
    private func removeRegistration(
        _ runner: RegisteredRunner,
        in repository: RepositoryRegistry.Repository,
        reason: String,
        onlyIfOffline: Bool = false
    ) async throws(LostLeadership) -> RegistrationRemoval {
        var metadata: Logger.Metadata = [
            "repo": "\(repository)", "runner.id": "\(runner.id)", "runner.name": "\(runner.name)",
            "reason": "\(reason)",
        ]
        let fresh: RegisteredRunner?
        do {
            fresh = try await github.runner(owner: repository.owner, repo: repository.name, id: runner.id)
        } catch {
            logger.warning(
                "reaper: cannot look at a registration; kept",
                metadata: metadata.merging(["error": "\(error)"]) { $1 }
            )
            return .failed
        }
        guard let fresh else { return .gone }
        guard fresh.busy == false, fresh.carries(ownerLabel), fresh.name == runner.name else {
            logger.info("reaper: registration is at work; kept", metadata: metadata)
            return .busy
        }
        if onlyIfOffline && fresh.status != "offline" {
            logger.info("reaper: registration is online again; kept", metadata: metadata)
            return .busy
        }
        try fence()
        do {
            try await github.deleteRunner(owner: repository.owner, repo: repository.name, runnerID: runner.id)
        } catch  where error.kind == .validation {
            logger.info("reaper: registration became busy; kept", metadata: metadata)
            return .busy
        } catch  where error.kind == .notFound {
            return .gone
        } catch {
            metadata["error"] = "\(error)"
            logger.warning("reaper: deleting a registration failed", metadata: metadata)
            return .failed
        }
        metrics.countReaped(reason)
        logger.notice("reaper: deleted a runner registration", metadata: metadata)
        return .deleted
    }

    private func recover(
        _ request: RunnerRequest,
        in repository: RepositoryRegistry.Repository,
        age: Double,
        summary: inout Summary
    ) async {
        let metadata: Logger.Metadata = [
            "repo": "\(repository)", "job.id": "\(request.jobID)", "queued_for_s": "\(Int(age))",
            "job.labels": "\(request.labels.joined(separator: ","))", "runner_job": "\(request.runnerJobName)",
        ]
        do {
            switch try await provisioner.provision(request, while: isLeader) {
            case .created(let name):
                summary.recovered += 1
                metrics.countRecovered()
                logger.notice(
                    "reconciler: provisioned a queued job the webhook path missed",
                    metadata: metadata.merging(["runner_job": "\(name)"]) { $1 }
                )
            case .alreadyProvisioned, .notQueued, .foreignRunner:
                break
            }
        } catch {
            logger.warning("reconciler: provisioning failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
        }
    }
}
