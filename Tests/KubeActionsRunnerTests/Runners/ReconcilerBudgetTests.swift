import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import Observability
@testable import Runners
@testable import TestSupport

/// A cycle as short steps on the clock the tests advance: decisions read the time when they are made, shutdown
/// stops a cycle in progress, GitHub points are spent within a ceiling a minute, and repositories are visited round
/// robin from where the last cycle stopped, after those flagged for priority.
@Suite struct ReconcilerBudgetTests {
    let github = FakeGitHubAPI()
    let kubernetes = FakeKubernetesAPI()
    let metrics = Metrics()
    let logs = LogCapture()
    let time = ManualClock()

    init() {
        let time = self.time
        github.state.withLock { $0.clock = time }
    }

    static func repositories(_ count: Int) -> [RepositoryRegistry.Repository] {
        (0..<count).map { RepositoryRegistry.Repository(owner: "octo", name: String(format: "r%04d", $0)) }
    }

    func registry(_ repositories: [RepositoryRegistry.Repository]) -> RepositoryRegistry {
        RepositoryRegistry(kubernetes: kubernetes, namespace: "ns", configured: repositories, logger: logs.logger())
    }

    func reconciler(
        repositories: [RepositoryRegistry.Repository] = [.init(owner: "octo", name: "repo")],
        pointsPerMinute: Int = 300,
        registry: RepositoryRegistry? = nil
    ) -> Reconciler {
        var configuration = Reconciler.Configuration()
        configuration.pointsPerMinute = pointsPerMinute
        return Reconciler.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            configuration: configuration,
            repositories: repositories,
            clock: time,
            registry: registry
        )
    }

    var listed: [String] { github.state.withLock { $0.listedRepositories } }

    @Test func decidesTheGraceByTheTimeOfTheDecisionNotOfTheCyclesStart() async throws {
        github.queue(job: 1, run: 10, age: 30)  // younger than the 60 s grace when the cycle starts
        let reconciler = reconciler()
        github.gate.close()
        let cycle = Task { await reconciler.cycle() }
        try await waitUntil("the cycle's first call in flight") { github.gate.waiting == 1 }
        time.advance(by: .seconds(60))  // the listing took a minute
        github.gate.open()
        let summary = await cycle.value
        #expect(summary.recovered == 1)
        #expect(kubernetes.jobNames == ["runner-1"])
    }

    @Test func shutdownStopsACycleInProgressWithinASecond() async throws {
        github.queue(job: 1, run: 10)
        let reconciler = reconciler(repositories: Self.repositories(3))
        try await testGracefulShutdown { trigger in
            let loop = Task { try await reconciler.run() }
            try await time.waitForSleepers(1)
            github.gate.close()
            time.advance(by: .seconds(60))
            try await waitUntil("the cycle's first call in flight") { github.gate.waiting == 1 }
            trigger.triggerGracefulShutdown()
            await expectEnds(loop, within: .seconds(1), "the reconciler's cycle")
        }
        #expect(github.calls.isEmpty)  // the call in flight was abandoned, and none came after it
        #expect(kubernetes.calls.isEmpty && kubernetes.jobNames.isEmpty)
        #expect(logs.text.contains("reconciler: cycle stopped for shutdown"))
    }

    @Test func cancellationStopsACycleBetweenItsCalls() async throws {
        let reconciler = reconciler(repositories: Self.repositories(3))
        github.gate.close()
        let cycle = Task { await reconciler.cycle() }
        try await waitUntil("the cycle's first call in flight") { github.gate.waiting == 1 }
        cycle.cancel()
        let summary = await cycle.value
        #expect(summary.result == "partial")
        #expect(github.calls.isEmpty && kubernetes.calls.isEmpty)
    }

    @Test func stopsWhereTheMinutesPointsAreSpentAndGoesOnFromThereNextCycle() async throws {
        // 20 points a minute: listing may spend 15, 3 a repository in the first cycle (registrations, queued and
        // in-progress runs: no runner Job is known yet), 2 after (no runner Job serves these repositories).
        let all = Self.repositories(12)
        let reconciler = reconciler(repositories: all, pointsPerMinute: 20)
        let first = await reconciler.cycle()
        #expect(first.result == "partial" && first.repositories == 5)
        #expect(listed == all.prefix(5).map(\.description))
        #expect(github.calls.count == 15)

        time.advance(by: .seconds(30))  // the same minute: nothing left to spend
        let second = await reconciler.cycle()
        #expect(second.result == "partial" && second.repositories == 0)
        #expect(github.calls.count == 15)

        time.advance(by: .seconds(30))  // a minute after the first: its points are free again
        let third = await reconciler.cycle()
        #expect(third.repositories == 7)
        // The last one listed was left midway (its in-progress runs did not fit): not visited.
        #expect(listed.suffix(8) == (all[5..<12] + all[0..<1]).map(\.description))
        time.advance(by: .seconds(60))
        _ = await reconciler.cycle()
        // Round robin: the tail, then the head again; never the same repositories every cycle.
        #expect(listed.suffix(8) == all[0..<8].map(\.description))
        #expect(github.mostPointsInAMinute <= 20)
    }

    @Test func keepsTheIntervalWhileACycleStoppedForItsBudget() async throws {
        let reconciler = reconciler(repositories: Self.repositories(12), pointsPerMinute: 20)
        let loop = Task { try await reconciler.run() }
        try await time.waitForSleepers(1)
        for _ in 0..<3 {
            time.advance(by: .seconds(60))
            try await time.waitForSleepers(1)
            #expect(time.sleeps == [.seconds(60)])  // not doubled: repositories wait for their visit
        }
        loop.cancel()
        await expectEnds(loop, within: .seconds(1), "the cancelled loop")
    }

    @Test func visitsFlaggedRepositoriesFirstThenGoesOnRoundRobin() async throws {
        let all = Self.repositories(12)
        let registry = registry(all)
        let reconciler = reconciler(repositories: all, pointsPerMinute: 20, registry: registry)
        registry.prioritize(owner: "octo", repo: "r0009")
        registry.prioritize(owner: "octo", repo: "r0007", loss: true)
        _ = await reconciler.cycle()
        #expect(listed == ["octo/r0007", "octo/r0009", "octo/r0000", "octo/r0001", "octo/r0002"])
        #expect(registry.priority().isEmpty)  // visited: no longer flagged
        time.advance(by: .seconds(60))
        _ = await reconciler.cycle()
        // The round robin goes on after its own last visit and skips no one (7 visits at 2 points, the 8th cut).
        #expect(listed.suffix(8) == all[3..<11].map(\.description))
    }

    @Test func keepsPointsForActingOnWhatItSaw() async throws {
        // 40 points: listing stops at 30; a provisioning (a GET and a POST, 6 points) still fits.
        let all = Self.repositories(20)
        for (index, repository) in all.prefix(9).enumerated() {
            github.queue(job: Int64(index + 1), run: Int64(index + 1), repository: repository.description)
        }
        let reconciler = reconciler(repositories: all, pointsPerMinute: 40)
        let summary = await reconciler.cycle()
        #expect(summary.recovered >= 1)
        #expect(github.mostPointsInAMinute <= 40)
    }

    /// 1,000 repositories, a few queued jobs lost among them: all provisioned within a sweep's worth of cycles,
    /// never more than the ceiling's points in any minute.
    @Test func recoversLostJobsAmongAThousandRepositoriesWithinTheBudget() async throws {
        let all = Self.repositories(1_000)
        let lost = [17, 333, 512, 640, 998]
        for index in lost {
            github.queue(job: Int64(index), run: Int64(index), repository: all[index].description)
        }
        let reconciler = reconciler(repositories: all)
        var cycles = 0
        while kubernetes.jobNames.count < lost.count && cycles < 30 {
            time.advance(by: .seconds(60))
            _ = await reconciler.cycle()
            cycles += 1
        }
        #expect(kubernetes.jobNames == Set(lost.map { "runner-\($0)" }))
        // Listing may spend 225 of the 300 points a minute, at least 3 a repository: 75 a cycle, 14 for 1,000.
        #expect(cycles <= 14)
        #expect(github.mostPointsInAMinute <= 300)
    }
}

extension ReconcilerBudgetTests {
    @Test func passesOverARepositoryWhoseListsCostMoreThanACycleMaySpend() async throws {
        let all = Self.repositories(3)
        for run in 1...10 {
            github.queue(job: Int64(run), run: Int64(run), repository: all[1].description)
        }
        let reconciler = reconciler(repositories: all, pointsPerMinute: 12)  // listing may spend 9
        _ = await reconciler.cycle()
        #expect(listed == ["octo/r0000", "octo/r0001"])  // r0001 stopped midway
        time.advance(by: .seconds(60))
        _ = await reconciler.cycle()  // r0001 again, from a fresh minute: still too dear
        #expect(logs.text.contains("reconciler: a repository's lists cost more than a cycle may spend; passed over"))
        time.advance(by: .seconds(60))
        _ = await reconciler.cycle()
        // The round robin goes on after it (and comes back to it, which again stops the cycle there).
        #expect(listed.suffix(3) == ["octo/r0002", "octo/r0000", "octo/r0001"])
        #expect(github.mostPointsInAMinute <= 12)
    }
}

extension ReconcilerBudgetTests {
    var exposition: String { String(decoding: metrics.exposition(), as: UTF8.self) }

    @Test func reportsPointsRepositoriesAndTheOldestUnvisitedRepository() async throws {
        let reconciler = reconciler(repositories: Self.repositories(12), pointsPerMinute: 20)
        await reconciler.cycle()
        #expect(exposition.contains("reconciler_points_last_minute 15"))
        #expect(exposition.contains("reconciler_repositories_visited 5"))
        time.advance(by: .seconds(30))
        await reconciler.cycle()  // nothing left to spend this minute
        #expect(exposition.contains("reconciler_repositories_visited 0"))
        #expect(exposition.contains("reconciler_oldest_unvisited_seconds 30"))
        time.advance(by: .seconds(30))
        await reconciler.cycle()
        #expect(exposition.contains("reconciler_oldest_unvisited_seconds 60"))  // r0010 and r0011 still wait
    }
}

extension ReconcilerBudgetTests {
    @Test func aCycleThatCouldNotActLeavesTheCursorAndTheFlagsWhereTheyWere() async throws {
        let all = Self.repositories(12)
        let registry = registry(all)
        let reconciler = reconciler(repositories: all, pointsPerMinute: 20, registry: registry)
        registry.prioritize(owner: "octo", repo: "r0009", loss: true)
        kubernetes.down.withLock { $0 = true }
        #expect(await reconciler.cycle().result == "failed")
        kubernetes.down.withLock { $0 = false }
        time.advance(by: .seconds(60))
        await reconciler.cycle()
        let visits = ["octo/r0009", "octo/r0000", "octo/r0001", "octo/r0002", "octo/r0003"]
        #expect(listed == visits + visits)  // visited again from where the failed cycle started
        #expect(registry.priority().isEmpty)
    }
}

extension ReconcilerBudgetTests {
    @Test func aPointFreesAMinuteAfterItWasSpent() {
        let budget = PointsBudget(perMinute: 10, clock: time)
        #expect(budget.spend(5))
        time.advance(by: .seconds(30))
        #expect(budget.spend(5) && !budget.spend(1))
        budget.charge(2)  // a list's further pages: counted whatever the ceiling says
        #expect(budget.spentThisMinute == 12)
        time.advance(by: .seconds(30))  // the first five are a minute old
        #expect(budget.spentThisMinute == 7 && budget.spend(3) && !budget.spend(1))
        // 5 and 2 spent 30 s ago, 3 now: at most 5 in 30 s, at most 3 also in 30 s, none in 60 s.
        #expect(budget.timeUntil(spentAtMost: 10) == .zero)
        #expect(budget.timeUntil(spentAtMost: 5) == .seconds(30))
        #expect(budget.timeUntil(spentAtMost: 3) == .seconds(30))
        #expect(budget.timeUntil(spentAtMost: 0) == .seconds(60))
    }
}

extension ReconcilerBudgetTests {
    func count(_ call: String) -> Int { github.calls.filter { $0 == call }.count }

    /// Once the runner Jobs were listed, a repository none of them serves costs two points a visit (its runs): its
    /// registrations are listed when its jobs show a matching queued one, when a runner Job serves it, or every
    /// `registrationsRefresh` (15 minutes).
    @Test func listsRegistrationsOnlyWhereTheyCanMatter() async throws {
        let all = Self.repositories(3)
        let reconciler = reconciler(repositories: all)
        await reconciler.cycle()
        #expect(count("runners") == 3)  // nothing known of runner Jobs yet: every repository's
        time.advance(by: .seconds(60))
        await reconciler.cycle()
        #expect(count("runners") == 3)
        #expect(
            github.calls.suffix(6) == Array(repeating: ["runs queued", "runs in_progress"], count: 3).flatMap { $0 }
        )

        github.queue(job: 1, run: 1, age: 120, repository: all[1].description)
        time.advance(by: .seconds(60))
        await reconciler.cycle()
        #expect(count("runners") == 4)  // after r0001's jobs showed one queued
        #expect(kubernetes.jobNames == ["runner-1"])
        time.advance(by: .seconds(60))
        await reconciler.cycle()
        #expect(count("runners") == 5)  // r0001 has a runner Job

        time.advance(by: .seconds(900))
        await reconciler.cycle()
        #expect(count("runners") == 8)  // every repository's, a quarter of an hour on
    }

    /// A queued job found within its grace (the webhook path may still serve it) has its repository visited again
    /// next cycle, not a whole round robin later.
    @Test func visitsARepositoryAgainNextCycleWhileItsJobIsWithinTheGrace() async throws {
        let all = Self.repositories(30)
        github.queue(job: 1, run: 1, age: 30, repository: all[0].description)
        let reconciler = reconciler(repositories: all, pointsPerMinute: 40)
        await reconciler.cycle()
        #expect(kubernetes.jobNames.isEmpty)
        let first = listed.count
        time.advance(by: .seconds(60))
        await reconciler.cycle()
        #expect(listed[first] == "octo/r0000")
        #expect(kubernetes.jobNames == ["runner-1"])
        #expect(exposition.contains(#"reconciler_lost_jobs_recovered_total{how="poll"} 1"#))
        #expect(exposition.contains(#"reconciler_lost_jobs_recovered_total{how="redelivery"} 0"#))
    }
}

extension ReconcilerBudgetTests {
    /// Listing goes on while points free, but for one interval at most: then the cycle acts on what it saw (here,
    /// a job in the repository it listed first) and the next goes on from where it stopped.
    @Test func actsAfterListingForAWholeInterval() async throws {
        let all = Self.repositories(12)
        github.queue(job: 1, run: 1, repository: all[0].description)
        let reconciler = reconciler(repositories: all)
        github.gate.close()
        let cycle = Task { await reconciler.cycle() }
        try await waitUntil("the cycle's first call in flight") { github.gate.waiting == 1 }
        time.advance(by: .seconds(60))  // that call took a whole interval
        github.gate.open()
        let summary = await cycle.value
        #expect(summary.result == "partial" && summary.repositories == 1)
        #expect(kubernetes.jobNames == ["runner-1"])
        #expect(logs.text.contains("reconciler: listed for a whole interval"))
        #expect(exposition.contains("reconciler_cycle_seconds 60.0"))  // on the test's clock
        _ = await reconciler.cycle()
        #expect(listed.prefix(3) == ["octo/r0000", "octo/r0001", "octo/r0002"])
    }
}
