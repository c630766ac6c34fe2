import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import Observability
@testable import Runners
@testable import TestSupport

/// The reconciler's loop, on a clock the tests advance: when cycles run, how their interval grows while nothing is
/// queued, what a replica that does not lead does, and how the loop stops.
@Suite struct ReconcilerLoopTests {
    let github = FakeGitHubAPI()
    let kubernetes = FakeKubernetesAPI()
    let metrics = Metrics()
    let logs = LogCapture()
    let time = ManualClock()
    let leading = Leading()

    final class Leading: Sendable {
        private let value = Mutex(true)
        var isSet: Bool { value.withLock { $0 } }
        func set(_ new: Bool) { value.withLock { $0 = new } }
    }

    /// Every 60 s, doubling up to 300 s while nothing is queued; it leads while `leading` is set.
    func reconciler() -> Reconciler {
        let leading = self.leading
        return Reconciler.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            clock: time,
            isLeader: { leading.isSet }
        )
    }

    var exposition: String { String(decoding: metrics.exposition(), as: UTF8.self) }

    /// Lets the loop's pause pass and waits until it sleeps again; returns its next pause.
    func nextTurn() async throws -> Duration {
        let pause = try #require(time.sleeps.first)
        time.advance(by: pause)
        try await time.waitForSleepers(1)
        return try #require(time.sleeps.first)
    }

    @Test func doublesItsIntervalWhileNothingIsQueuedAndGoesBackOnceAJobWaits() async throws {
        let reconciler = reconciler()
        let loop = Task { try await reconciler.run() }
        try await time.waitForSleepers(1)
        #expect(time.sleeps == [.seconds(60)])  // the first cycle comes one interval after the start
        #expect(github.calls.isEmpty)
        var pauses: [Duration] = []
        for _ in 0..<4 { pauses.append(try await nextTurn()) }
        #expect(pauses == [.seconds(120), .seconds(240), .seconds(300), .seconds(300)])
        #expect(exposition.contains(#"reconciler_cycles_total{result="ok"} 4"#))
        #expect(github.calls.filter { $0 == "runs queued" }.count == 4)

        time.advance(by: .seconds(299))
        #expect(time.sleepers == 1)  // not before its time
        github.queue(job: 1, run: 10)
        time.advance(by: .seconds(1))
        try await time.waitForSleepers(1)
        #expect(kubernetes.jobNames == ["runner-1"])
        #expect(time.sleeps == [.seconds(60)])
        #expect(exposition.contains(#"reconciler_cycles_total{result="ok"} 5"#))

        loop.cancel()
        await expectEnds(loop, within: .seconds(1), "the cancelled loop")
        #expect(time.sleepers == 0)
    }

    @Test func skipsItsCyclesAtTheBaseIntervalWhileAnotherReplicaLeads() async throws {
        leading.set(false)
        github.queue(job: 1, run: 10)
        let reconciler = reconciler()
        let loop = Task { try await reconciler.run() }
        try await time.waitForSleepers(1)
        #expect(try await nextTurn() == .seconds(60))
        #expect(try await nextTurn() == .seconds(60))
        #expect(exposition.contains(#"reconciler_cycles_total{result="skipped"} 2"#))
        #expect(github.calls.isEmpty && kubernetes.calls.isEmpty)

        leading.set(true)
        #expect(try await nextTurn() == .seconds(60))  // a job was queued
        #expect(kubernetes.jobNames == ["runner-1"])
        loop.cancel()
        await expectEnds(loop, within: .seconds(1), "the cancelled loop")
    }

    @Test func stopsWithinASecondOfShutdownWhileSleeping() async throws {
        let reconciler = reconciler()
        try await testGracefulShutdown { trigger in
            let loop = Task { try await reconciler.run() }
            try await time.waitForSleepers(1)
            trigger.triggerGracefulShutdown()
            await expectEnds(loop, within: .seconds(1), "the reconciler's loop")
        }
        #expect(time.sleepers == 0)
        #expect(github.calls.isEmpty)  // no cycle on the way out
    }
}
