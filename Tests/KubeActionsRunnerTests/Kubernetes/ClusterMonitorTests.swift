import ServiceLifecycleTestKit
import Testing

@testable import Kubernetes
@testable import Observability
@testable import TestSupport

/// The cluster monitor's loop and readiness, on a clock the tests advance.
@Suite struct ClusterMonitorTests {
    let kubernetes = FakeKubernetesAPI()
    let metrics = Metrics()
    let logs = LogCapture()
    let time = ManualClock()
    static let ours = ["app.kubernetes.io/managed-by": "kube-actions-runner"]

    /// Looks every 15 s.
    func monitor() -> ClusterMonitor {
        ClusterMonitor(kubernetes: kubernetes, namespace: "ns", metrics: metrics, logger: logs.logger(), clock: time)
    }

    var exposition: String { String(decoding: metrics.exposition(), as: UTF8.self) }

    @Test func countsActiveRunnerJobsOnceEveryInterval() async throws {
        let monitor = monitor()
        kubernetes.addJob("runner-1", labels: Self.ours)
        let loop = Task { try await monitor.run() }
        try await time.waitForSleepers(1)
        #expect(time.sleeps == [.seconds(15)])
        #expect(exposition.contains("runner_jobs_active 1"))
        kubernetes.addJob("runner-2", labels: Self.ours)
        kubernetes.addJob("runner-3", labels: Self.ours, finished: true)
        time.advance(by: .seconds(14))
        #expect(time.sleepers == 1 && kubernetes.calls.filter { $0 == "list jobs" }.count == 1)
        time.advance(by: .seconds(1))
        try await time.waitForSleepers(1)
        #expect(exposition.contains("runner_jobs_active 2"))
        #expect(kubernetes.calls.filter { $0 == "list jobs" }.count == 2)
        loop.cancel()
        await expectEnds(loop, within: .seconds(1), "the cancelled loop")
    }

    /// Ready while the API answered within three intervals (45 s), counted on the monitor's clock.
    @Test func turnsNotReadyOnceTheAPIHasNotAnsweredForThreeIntervals() async throws {
        let monitor = monitor()
        let loop = Task { try await monitor.run() }
        try await time.waitForSleepers(1)
        #expect(await monitor.readiness() == .ready)
        kubernetes.down.withLock { $0 = true }
        for _ in 0..<3 {
            time.advance(by: .seconds(15))
            try await time.waitForSleepers(1)
        }
        #expect(logs.text.contains("Kubernetes API check failed"))
        #expect(await monitor.readiness() == .ready)  // 45 s: not more than three intervals
        time.advance(by: .seconds(1))
        let readiness = await monitor.readiness()
        guard case .notReady(let reason) = readiness else {
            Issue.record("expected not ready, got \(readiness)")
            return
        }
        #expect(reason.hasPrefix("Kubernetes API has not answered for 46s: "))

        kubernetes.down.withLock { $0 = false }
        time.advance(by: .seconds(14))
        try await time.waitForSleepers(1)
        #expect(await monitor.readiness() == .ready)
        #expect(logs.text.contains("Kubernetes API answers again"))
        loop.cancel()
        await expectEnds(loop, within: .seconds(1), "the cancelled loop")
    }

    @Test func stopsWithinASecondOfShutdownWhileSleeping() async throws {
        let monitor = monitor()
        try await testGracefulShutdown { trigger in
            let loop = Task { try await monitor.run() }
            try await time.waitForSleepers(1)
            trigger.triggerGracefulShutdown()
            await expectEnds(loop, within: .seconds(1), "the monitor's loop")
        }
        #expect(time.sleepers == 0)
        #expect(kubernetes.calls.filter { $0 == "list jobs" }.count == 1)
    }
}
