import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import App
@testable import Kubernetes
@testable import Observability
@testable import Runners
@testable import TestSupport

@Suite struct LeaderElectorTests {
    let kubernetes = FakeKubernetesAPI()
    let metrics = Metrics()
    let time = ManualClock()
    let logs = LogCapture()

    func elector(_ identity: String) -> LeaderElector {
        var configuration = LeaderElector.Configuration()
        configuration.leaseDuration = .seconds(30)
        configuration.renewInterval = .seconds(10)
        configuration.fencingMargin = .seconds(5)
        return LeaderElector(
            kubernetes: kubernetes,
            namespace: "ns",
            identity: identity,
            configuration: configuration,
            clock: time,
            metrics: metrics,
            logger: logs.logger()
        )
    }

    @Test func oneReplicaLeadsTheOtherWaits() async {
        let a = elector("a")
        let b = elector("b")
        await a.tryAcquireOrRenew()
        await b.tryAcquireOrRenew()
        #expect(a.isLeader && !b.isLeader)
        await a.tryAcquireOrRenew()  // renews
        #expect(a.isLeader && kubernetes.objects.lease(name: "kube-actions-runner")?.holderIdentity == "a")
    }

    @Test func takesOverOnlyAfterTheLeaseWentUnrenewedForItsDuration() async throws {
        let a = elector("a")
        let b = elector("b")
        await a.tryAcquireOrRenew()
        await b.tryAcquireOrRenew()
        time.advance(by: .seconds(15))
        await b.tryAcquireOrRenew()
        #expect(!b.isLeader)  // half the duration: not yet
        // Fencing: a stops believing it leads before b may take over.
        time.advance(by: .seconds(11))
        #expect(!a.isLeader)
        time.advance(by: .seconds(4))
        await b.tryAcquireOrRenew()
        #expect(b.isLeader)
        #expect(kubernetes.objects.lease(name: "kube-actions-runner")?.leaseTransitions == 1)
        await a.tryAcquireOrRenew()
        #expect(!a.isLeader)
    }

    @Test func toleratesRenewFailuresUntilTheLeaseWouldExpire() async {
        let a = elector("a")
        await a.tryAcquireOrRenew()
        kubernetes.down.withLock { $0 = true }
        time.advance(by: .seconds(10))
        await a.tryAcquireOrRenew()
        #expect(a.isLeader)  // one failed renewal: nobody can take over yet
        #expect(logs.text.contains("still leading until it would expire"))
        time.advance(by: .seconds(10))
        await a.tryAcquireOrRenew()
        #expect(a.isLeader)
        time.advance(by: .seconds(5))  // 25 s: the lease duration less the fencing margin
        #expect(!a.isLeader)
        kubernetes.down.withLock { $0 = false }
        await a.tryAcquireOrRenew()  // still the holder: renews and leads again
        #expect(a.isLeader)
    }

    @Test func stopsLeadingAtOnceWhenAnotherReplicaTookTheLease() async throws {
        let a = elector("a")
        await a.tryAcquireOrRenew()
        var lease = try #require(kubernetes.objects.lease(name: "kube-actions-runner"))
        lease.holderIdentity = "b"
        _ = try kubernetes.objects.updateLease(lease, namespace: "ns")
        await a.tryAcquireOrRenew()
        #expect(!a.isLeader)
    }

    @Test func releasesTheLeaseSoASuccessorStartsAtOnce() async {
        let a = elector("a")
        let b = elector("b")
        await a.tryAcquireOrRenew()
        await a.release()
        await b.tryAcquireOrRenew()
        #expect(b.isLeader && !a.isLeader)
    }

    @Test func releasesEvenFromACancelledTaskAndAfterFencingStoppedIt() async throws {
        let a = elector("a")
        await a.tryAcquireOrRenew()
        time.advance(by: .seconds(26))  // fenced: no longer acts, but the Lease still names it
        #expect(!a.isLeader)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            await a.release()
        }
        await task.value
        #expect(kubernetes.objects.lease(name: "kube-actions-runner")?.holderIdentity == "")
    }

    var holder: String? { kubernetes.objects.lease(name: "kube-actions-runner")?.holderIdentity }

    /// Through its loop, a follower looks every 5 s and takes over a Lease nobody renewed for 30 s; then it renews
    /// every 10 s, and gives the Lease up when it stops.
    @Test func aFollowersLoopTakesOverALeaseNobodyRenews() async throws {
        let a = elector("a")
        await a.tryAcquireOrRenew()  // and then its process died: nothing renews
        let b = elector("b")
        let loop = Task { try await b.run() }
        try await time.waitForSleepers(1)
        #expect(time.sleeps == [.seconds(5)] && !b.isLeader)
        for _ in 0..<5 {
            time.advance(by: .seconds(5))
            try await time.waitForSleepers(1)
        }
        #expect(!b.isLeader && holder == "a")  // 25 s unchanged: not yet
        time.advance(by: .seconds(5))
        try await time.waitForSleepers(1)
        #expect(b.isLeader && holder == "b")
        #expect(time.sleeps == [.seconds(10)])
        loop.cancel()
        await expectEnds(loop, within: .seconds(1), "the cancelled loop")
        #expect(holder == "")
    }

    /// A leader's loop renews every 10 s, so a follower's never takes over; a shutdown stops the leader's loop at
    /// once and releases the Lease, and the follower leads at its next look.
    @Test func aLeaderKeepsTheLeaseWhileItRenewsAndHandsItOverWhenItShutsDown() async throws {
        let a = elector("a")
        let b = elector("b")
        try await testGracefulShutdown { trigger in
            let leader = Task { try await a.run() }
            try await time.waitForSleepers(1)
            #expect(a.isLeader)
            let follower = Task.detached { try await b.run() }  // not under this shutdown
            try await time.waitForSleepers(2)
            #expect(time.sleeps == [.seconds(5), .seconds(10)])
            for _ in 0..<12 {
                time.advance(by: .seconds(5))
                try await time.waitForSleepers(2)
            }
            #expect(a.isLeader && !b.isLeader && holder == "a")  // a minute on

            trigger.triggerGracefulShutdown()
            await expectEnds(leader, within: .seconds(1), "the leader's loop")
            #expect(holder == "" && !a.isLeader)
            time.advance(by: try #require(time.sleeps.first))
            try await time.waitForSleepers(1)
            #expect(b.isLeader && holder == "b")
            follower.cancel()
            await expectEnds(follower, within: .seconds(1), "the follower's loop")
        }
    }
}
