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
/// It spends GitHub's rate limit carefully: conditional requests (a 304 is free), at most `pointsPerMinute` points
/// a minute (a GET 1, a POST or DELETE 5: GitHub's secondary limit is about 900 for every path of a credential), a
/// cycle stops when `x-ratelimit-remaining` falls under `reserve` (kept for webhook deliveries), at most
/// `maxProvisionsPerCycle` runners per cycle (GitHub's secondary limit is 80 content-creating requests a minute),
/// and the interval doubles, up to `maxInterval`, while nothing is found and every repository was visited.
/// Repositories are visited round robin from where the last cycle stopped, after those with a sign of loss or a
/// recent delivery (`RepositoryRegistry.priority()`).
///
/// A cycle is a sequence of short steps: each decision reads the clock when it is made, and shutdown or
/// cancellation stops the cycle before its next call.
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
        /// GitHub points the reconciler (its lists, the reapers' looks and deletions, its provisionings) spends in
        /// any minute (`RECONCILE_POINTS_PER_MINUTE`): a GET is 1, a POST or DELETE 5. GitHub's secondary limit is
        /// about 900 a minute per credential for every path; the rest is the deliveries'.
        package var pointsPerMinute = 300
        /// Of `pointsPerMinute`, what listing may spend: the rest is kept for acting on what was seen.
        package var observingPoints: Int { pointsPerMinute * 3 / 4 }
        package var maxProvisionsPerCycle = 20
        /// A repository no runner Job of this deployment serves has its registrations listed this often (a visit
        /// that finds a matching queued job, or one of its runners at work, lists them at once).
        package var registrationsRefresh: Duration = .seconds(900)
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
        /// `kubernetes` mode: the pods the container hooks created for runners that are gone are removed
        /// (`reapOrphanedHookPods`).
        package var reapsHookPods = false
        /// The resources of the custom backends runners may be made of: their objects are listed with the Jobs.
        package var customResources: [KubernetesResource] = []
        /// Idle runners kept registered ahead of jobs.
        package var warmPools: [WarmPool] = []

        package init() {}
    }

    let configuration: Configuration
    let github: any GitHubAPI
    let rateLimitRemaining: @Sendable () -> Int64?
    let kubernetes: any KubernetesAPI
    let namespace: String
    let ownerLabel: String
    let provisioner: any RunnerProvisioner
    /// Which jobs are this service's: `LABEL_MATCHERS`, or the profiles in force.
    let matcher: any JobMatching
    let repositories: RepositoryRegistry
    let isLeader: @Sendable () -> Bool
    let scope: RunnerScope
    let budget: PointsBudget
    let contentBudget: ContentBudget?
    let contentKey: @Sendable (_ owner: String) -> String
    /// Redelivers failed deliveries of the known hooks each cycle, within `budget`; nil when it is off.
    let deliveryRecovery: DeliveryRecovery?
    let clock: MonotonicClock
    let metrics: Metrics
    let logger: Logger

    struct State {
        /// Job id → until when it is not provisioned again, and why (its previous pod could not run).
        var heldOff: [String: (until: MonotonicClock.Instant, reason: String)] = [:]
        /// A rule's key (`idle:<runner id>`, `pull:<pod uid>`, …) → when this process first saw that state.
        var firstSeen: [String: MonotonicClock.Instant] = [:]
        /// The repository of a rule's key that looks at a repository's registrations: kept while that repository
        /// waits for its next visit.
        var keyRepository: [String: RepositoryRegistry.Repository] = [:]
        /// When each known repository was last visited (or first known).
        var lastVisited: [RepositoryRegistry.Repository: MonotonicClock.Instant] = [:]
        /// The last repository the round robin visited: the next cycle starts after it.
        var cursor: RepositoryRegistry.Repository?
        /// Repositories of the runner Jobs the last cycle listed (`servedKey`); nil before the first list.
        var servedRepositories: Set<String>?
        /// When each repository's registrations were last listed (or it was first visited without them).
        var registrationsListed: [RepositoryRegistry.Repository: MonotonicClock.Instant] = [:]
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
        matcher: some JobMatching,
        repositories: RepositoryRegistry,
        isLeader: @escaping @Sendable () -> Bool,
        scope: RunnerScope = .repository,
        contentBudget: ContentBudget? = nil,
        contentKey: @escaping @Sendable (_ owner: String) -> String = { _ in "" },
        deliveryRecovery: DeliveryRecovery? = nil,
        clock: some Clock<Duration> = ContinuousClock(),
        metrics: Metrics,
        logger: Logger
    ) {
        self.deliveryRecovery = deliveryRecovery
        self.contentBudget = contentBudget
        self.contentKey = contentKey
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
        self.scope = scope
        self.clock = MonotonicClock(clock)
        self.budget = PointsBudget(perMinute: configuration.pointsPerMinute, clock: self.clock)
        self.metrics = metrics
        self.logger = logger
    }

    /// Cycles start every `interval`, start to start: a cycle that took a while (its lists, at the pace of its
    /// points, for at most an interval) is not followed by a whole interval more, so a round robin cut short by the
    /// budget goes on as soon as the minute's points free (a quarter of them, after a cycle that ran them out).
    package func run() async throws {
        var interval = configuration.interval
        var next = clock.now + interval
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let pause = max(next - clock.now, .zero)
            try? await cancelWhenGracefulShutdown { try await self.clock.sleep(for: pause) }
            guard !Task.isCancelled && !Task.isShuttingDownGracefully else { break }
            let started = clock.now
            guard isLeader() else {
                metrics.countReconcilerCycle("skipped")
                interval = configuration.interval
                next = started + interval
                stepDown()
                continue
            }
            // Shutdown cancels a cycle in progress; it stops before its next call.
            let summary = await cancelWhenGracefulShutdown { await self.cycle() }
            let idle = summary.queued == 0 && summary.result == "ok"
            interval = idle ? min(interval * 2, configuration.maxInterval) : configuration.interval
            next = started + interval
            // A cycle that ran the minute's points out before its interval was over is followed once a quarter of
            // them is free again: started at once, the next would find nothing to spend and leave the points that
            // free meanwhile unused for a whole interval. One that listed for the whole interval (at the pace the
            // points free) is followed at once, and goes on at that pace.
            if clock.now - started < interval,
                budget.spentThisMinute + PointsBudget.read > configuration.observingPoints
            {
                let quarter = budget.timeUntil(spentAtMost: configuration.observingPoints * 3 / 4)
                next = max(next, clock.now + quarter)
            }
        }
    }

    /// Forgets what this replica saw while it led: a later term starts its rules' clocks afresh (an instant from an
    /// earlier term would make a rule fire at once), and its gauges no longer report a state the leader owns.
    func stepDown() {
        state.withLock { state in
            state.firstSeen.removeAll()
            state.keyRepository.removeAll()
            // Another leader may have made runner Jobs meanwhile: a new term lists every repository's registrations.
            state.servedRepositories = nil
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

    /// Thrown before a mutating call once this replica no longer holds the Lease, or between steps once shutdown
    /// came: the cycle stops there.
    struct LostLeadership: Error {
        /// Shutdown or cancellation, not a lost Lease.
        var stopping = false
    }

    /// One pass: the known hooks' recent deliveries first (a page of 100 costs a point; what failed is redelivered,
    /// and a repository with a failed delivery is visited first), then the repositories within the budget, then
    /// the rules.
    @discardableResult
    package func cycle() async -> Summary {
        let started = clock.now
        var summary = Summary()
        if let deliveryRecovery, isLeader() {
            await deliveryRecovery.pass(budget: budget)
        }
        let world: World
        do {
            world = try await observe(summary: &summary)
            if world.stopping {
                logger.info("reconciler: cycle stopped for shutdown")
                summary.result = "partial"
                metrics.countReconcilerCycle(summary.result)
                return summary
            }
        } catch {
            logger.warning("reconciler: cannot list runner jobs; cycle skipped", metadata: ["error": "\(error)"])
            metrics.countReconcilerCycle("failed")
            return Summary(result: "failed")
        }
        var touched: Set<String> = []
        do throws(LostLeadership) {
            try await act(on: world, summary: &summary, touched: &touched)
        } catch {
            if error.stopping {
                logger.info("reconciler: cycle stopped for shutdown")
            } else {
                logger.warning("reconciler: this replica no longer leads; cycle stopped before its next change")
            }
            summary.result = "partial"
        }

        // A state not looked at again is over; one of a repository whose registrations this cycle did not list
        // waits for that list.
        let waiting = Set(world.known.filter { world.registrations[$0] == nil })
        state.withLock { state in
            state.firstSeen = state.firstSeen.filter { key, _ in
                touched.contains(key) || state.keyRepository[key].map { waiting.contains($0) } ?? false
            }
            state.keyRepository = state.keyRepository.filter { state.firstSeen[$0.key] != nil }
            // A hold-off that ran out is over: the map holds only the jobs and pools held off now.
            let now = clock.now
            state.heldOff = state.heldOff.filter { now < $0.value.until }
        }
        metrics.countReconcilerCycle(summary.result)
        report(world, started: started)
        logger.info(
            "reconciler cycle",
            metadata: [
                "repositories": "\(summary.repositories)", "queued": "\(summary.queued)",
                "recovered": "\(summary.recovered)",
                "result": "\(summary.result)", "points_last_minute": "\(budget.spentThisMinute)",
            ]
        )
        return summary
    }

    /// The cycle's gauges: points of the last minute, repositories visited, duration, oldest unvisited repository.
    private func report(_ world: World, started: MonotonicClock.Instant) {
        let now = clock.now
        let oldest = state.withLock { state -> Duration in
            var visits: [RepositoryRegistry.Repository: MonotonicClock.Instant] = [:]
            for repository in world.known { visits[repository] = state.lastVisited[repository] ?? started }
            for repository in world.repositories { visits[repository] = now }
            state.lastVisited = visits
            state.registrationsListed = state.registrationsListed.filter { visits[$0.key] != nil }
            return visits.values.map { now - $0 }.max() ?? .zero
        }
        metrics.reconcilerPoints.set(Int64(budget.spentThisMinute))
        metrics.reconcilerRepositories.set(Int64(world.repositories.count))
        let took = (now - started).components
        metrics.reconcilerCycleSeconds.set(Double(took.seconds) + Double(took.attoseconds) / 1e18)
        metrics.reconcilerOldestUnvisited.set(Int64(oldest.components.seconds))
    }

    // MARK: - Acting

    /// What one cycle's rules share while they act: the states they looked at (remembered for the next cycle) and
    /// the Jobs they removed.
    struct Cycle {
        var touched: Set<String> = []
        var removed: Set<String> = []
    }

    /// How long this process has seen the state `key` names, by the current time (zero the first time); the state
    /// is remembered for the next cycle.
    /// `repository` names the repository whose registrations the state is about: the state is kept across cycles
    /// that do not visit it.
    func seenFor(
        _ key: String,
        of repository: RepositoryRegistry.Repository? = nil,
        in cycle: inout Cycle
    ) -> Duration {
        cycle.touched.insert(key)
        let now = clock.now
        return now
            - state.withLock { state in
                if let repository { state.keyRepository[key] = repository }
                return state.firstSeen[key]
                    ?? {
                        state.firstSeen[key] = now; return now
                    }()
            }
    }

    /// Stops the cycle once shutdown came (checked between rules and before each call).
    func checkStopping() throws(LostLeadership) {
        if Task.isCancelled || Task.isShuttingDownGracefully { throw LostLeadership(stopping: true) }
    }

    /// The rules, in order: the reapers first (what cannot run, what was interrupted, what no Job records, what
    /// exited), then recovery of queued jobs and, with the same plan, the idle reaper.
    func act(on world: World, summary: inout Summary, touched: inout Set<String>) async throws(LostLeadership) {
        var cycle = Cycle()
        defer { touched = cycle.touched }
        try await reapJobsThatCannotRun(in: world, &cycle)
        try checkStopping()
        try await reapInterruptedProvisionings(in: world, &cycle)
        try checkStopping()
        try await reapUnrecordedRegistrations(in: world, &cycle)
        try checkStopping()
        try await reapExitedRunners(in: world, &cycle)
        try checkStopping()
        try await reapOrphanedHookPods(in: world, &cycle)
        try checkStopping()
        try await reapFinishedCustomRunners(in: world, &cycle)
        try checkStopping()
        let plans = plans(for: world, &cycle)
        try await recoverQueuedJobs(in: world, plans: plans, &cycle, summary: &summary)
        try checkStopping()
        try await reapIdleRunners(in: world, plans: plans, &cycle)
        try checkStopping()
        try await replenishWarmPools(in: world, &cycle, summary: &summary)
    }
}
