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
        let stored = kubernetes.objects.configMap(name: RepositoryRegistry.configMapName)?.data["repositories"] ?? ""
        #expect(stored.split(separator: "\n").map { $0.split(separator: " ")[0] } == ["octo/a", "other/b"])
    }

    @Test func forgetsARepositoryWithoutAMatchingJobFor30DaysButNeverAConfiguredOne() async throws {
        let time = ManualClock()
        let registry = RepositoryRegistry(
            kubernetes: kubernetes,
            namespace: "ns",
            configured: [.init(owner: "cfg", name: "c")],
            logger: logs.logger(),
            clock: time
        )
        registry.note(owner: "octo", repo: "old")
        registry.note(owner: "cfg", repo: "c")
        await registry.store()
        time.advance(by: .seconds(20 * 86_400))
        registry.note(owner: "octo", repo: "new")
        await registry.store()
        #expect(await registry.all().map(\.description) == ["cfg/c", "octo/new", "octo/old"])
        time.advance(by: .seconds(11 * 86_400))  // octo/old's last match is 31 days old; octo/new's 11
        #expect(await registry.all().map(\.description) == ["cfg/c", "octo/new"])
        await registry.store()
        let stored = kubernetes.objects.configMap(name: RepositoryRegistry.configMapName)?.data["repositories"] ?? ""
        #expect(!stored.contains("octo/old") && stored.contains("octo/new"))
        // Another replica (or a restart) does not bring it back from what it stored.
        let restarted = RepositoryRegistry(
            kubernetes: kubernetes,
            namespace: "ns",
            configured: [],
            logger: logs.logger()
        )
        #expect(await restarted.all().map(\.description) == ["octo/new"])
    }

    @Test func readsRepositoriesStoredWithoutTimesAsMatchedNow() {
        let decoded = RepositoryRegistry.decode("octo/a\nocto/b 1700000000\nbad", now: 1_800_000_000)
        #expect(
            decoded == [.init(owner: "octo", name: "a"): 1_800_000_000, .init(owner: "octo", name: "b"): 1_700_000_000]
        )
    }

    @Test func aMatchingQueuedJobTheReconcilerSeesKeepsItsRepositoryKnown() async throws {
        let time = ManualClock()
        let registry = RepositoryRegistry(
            kubernetes: kubernetes,
            namespace: "ns",
            configured: [],
            logger: logs.logger(),
            clock: time
        )
        registry.note(owner: "octo", repo: "repo")
        let reconciler = Reconciler.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            clock: time,
            registry: registry
        )
        time.advance(by: .seconds(29 * 86_400))
        github.queue(job: 1, run: 10)
        _ = await reconciler.cycle()
        time.advance(by: .seconds(2 * 86_400))
        #expect(await registry.all().map(\.description) == ["octo/repo"])
        #expect(registry.priority().isEmpty)  // the reconciler's own look flags nothing
    }

    @Test func parsesTheRepositoriesVariable() {
        let (repositories, invalid) = RepositoryRegistry.parse("octo/a, octo/b\nme/c  bad /x")
        #expect(repositories.map(\.description) == ["octo/a", "octo/b", "me/c"])
        #expect(invalid == ["bad", "/x"])
    }
}
