import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import App
@testable import Kubernetes
@testable import Observability
@testable import Runners
@testable import TestSupport

@Suite struct ReconcilerTests {
    let github = FakeGitHubAPI()
    let kubernetes = FakeKubernetesAPI()
    let metrics = Metrics()
    let logs = LogCapture()
    let remaining = Remaining()

    final class Remaining: Sendable {
        let value = Mutex<Int64?>(5000)
        func set(_ new: Int64?) { value.withLock { $0 = new } }
        var current: Int64? { value.withLock { $0 } }
    }

    func reconciler(
        repositories: [RepositoryRegistry.Repository] = [.init(owner: "octo", name: "repo")],
        matcher: String? = nil
    ) throws -> Reconciler {
        let remaining = self.remaining
        return Reconciler.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            repositories: repositories,
            matcher: try LabelMatcher(parsing: matcher),
            rateLimitRemaining: { remaining.current }
        )
    }

    var exposition: String { String(decoding: metrics.exposition(), as: UTF8.self) }

    @Test func provisionsQueuedJobsTheWebhookPathMissed() async throws {
        github.queue(job: 1, run: 10)
        github.queue(job: 2, run: 20)
        let summary = try await reconciler().cycle()
        #expect(summary == .init(repositories: 1, queued: 2, recovered: 2, result: "ok"))
        #expect(kubernetes.jobNames == ["runner-1", "runner-2"] && kubernetes.secretNames == ["runner-1", "runner-2"])
        #expect(exposition.contains("reconciler_jobs_recovered_total 2"))
        #expect(exposition.contains(#"reconciler_cycles_total{result="ok"} 1"#))
        #expect(logs.text.contains("reconciler: provisioned a queued job the webhook path missed"))
    }

    @Test func findsQueuedJobsInsideRunsAlreadyInProgress() async throws {
        github.queue(job: 1, status: "in_progress", run: 10)
        github.queue(job: 2, run: 10)  // the second job of the same run still waits
        let summary = try await reconciler().cycle()
        #expect(summary.recovered == 1)
        #expect(kubernetes.jobNames == ["runner-2"])
    }

    @Test func leavesYoungMatchedAndForeignJobsAlone() async throws {
        github.queue(job: 1, run: 10, age: 5)  // inside the grace period: the webhook path may still be at work
        github.queue(job: 2, run: 20, labels: ["ubuntu-latest"])  // not ours
        github.queue(job: 3, run: 30)
        _ = try await kubernetes.createJob(
            RunnerJob.render(
                for: RunnerRequest(
                    owner: "octo",
                    repository: "repo",
                    jobID: 3,
                    runID: 30,
                    jobName: "",
                    labels: [],
                    deliveryID: nil
                ),
                settings: Samples.settings(.standard)
            ).job,
            namespace: "ns"
        )  // already has a runner Job
        let summary = try await reconciler().cycle()
        #expect(summary.recovered == 0 && summary.queued == 2)
        #expect(kubernetes.jobNames == ["runner-3"])
        #expect(!github.calls.contains { $0.hasPrefix("jit") })
    }

    @Test func keepsGitHubsRateLimitForWebhooks() async throws {
        github.queue(job: 1, run: 10)
        remaining.set(100)
        let summary = try await reconciler().cycle()
        #expect(summary.result == "partial" && summary.recovered == 0)
        #expect(github.calls.isEmpty)
        #expect(exposition.contains("reconciler_rate_limit_reserve_hits_total 1"))
    }

    @Test func countsJobsQueuedTooLong() async throws {
        github.queue(job: 1, run: 10, age: 900)
        github.queue(job: 2, run: 20, age: 30)
        _ = try await reconciler().cycle()
        #expect(exposition.contains("reconciler_jobs_queued_too_long 1.0"))
    }

    @Test func remembersRepositoriesAcrossRestartsInAConfigMap() async throws {
        let first = RepositoryRegistry(kubernetes: kubernetes, namespace: "ns", configured: [], logger: logs.logger())
        first.note(owner: "octo", repo: "a")
        await first.store()
        first.note(owner: "other", repo: "b")
        await first.store()
        let restarted = RepositoryRegistry(
            kubernetes: kubernetes,
            namespace: "ns",
            configured: [.init(owner: "cfg", name: "c")],
            logger: logs.logger()
        )
        #expect(await restarted.all().map(\.description) == ["cfg/c", "octo/a", "other/b"])
        #expect(
            kubernetes.objects.configMap(name: RepositoryRegistry.configMapName)?.data["repositories"]
                == "octo/a\nother/b"
        )
    }

    @Test func parsesTheRepositoriesVariable() {
        let (repositories, invalid) = RepositoryRegistry.parse("octo/a, octo/b\nme/c  bad /x")
        #expect(repositories.map(\.description) == ["octo/a", "octo/b", "me/c"])
        #expect(invalid == ["bad", "/x"])
    }
}

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
