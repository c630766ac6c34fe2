import Synchronization
import Testing

@testable import KubeActionsRunner

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
                settings: RunnerJobTests.settings(.standard)
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

    func elector(_ identity: String) -> LeaderElector {
        var configuration = LeaderElector.Configuration()
        configuration.leaseDuration = .seconds(1)
        configuration.renewInterval = .milliseconds(200)
        configuration.fencingMargin = .milliseconds(300)
        return LeaderElector(
            kubernetes: kubernetes,
            namespace: "ns",
            identity: identity,
            configuration: configuration,
            metrics: metrics,
            logger: LogCapture().logger()
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
        try await Task.sleep(for: .milliseconds(500))
        await b.tryAcquireOrRenew()
        #expect(!b.isLeader)  // half the duration: not yet
        // Fencing: a stops believing it leads before b may take over.
        try await Task.sleep(for: .milliseconds(250))
        #expect(!a.isLeader)
        try await Task.sleep(for: .milliseconds(350))
        await b.tryAcquireOrRenew()
        #expect(b.isLeader)
        #expect(kubernetes.objects.lease(name: "kube-actions-runner")?.leaseTransitions == 1)
        await a.tryAcquireOrRenew()
        #expect(!a.isLeader)
    }

    @Test func stopsLeadingWhenTheAPIServerCannotBeReached() async {
        let a = elector("a")
        await a.tryAcquireOrRenew()
        #expect(a.isLeader)
        kubernetes.down.withLock { $0 = true }
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
}

@Suite struct ReaperTests {
    let github = FakeGitHubAPI()
    let kubernetes = FakeKubernetesAPI()
    let metrics = Metrics()
    let logs = LogCapture()

    func reconciler(secretDeadline: Duration, idleTimeout: Duration = .seconds(600)) throws -> Reconciler {
        var configuration = Reconciler.Configuration()
        configuration.secretDeadline = secretDeadline
        configuration.idleTimeout = idleTimeout
        return Reconciler.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            configuration: configuration
        )
    }

    @Test func repairsAProvisioningInterruptedBetweenTheJobAndItsSecret() async throws {
        github.queue(job: 5, run: 50)
        // A process killed after round 2: the Job and a registration exist, the Secret does not.
        kubernetes.state.withLock {
            $0.jobs["runner-5"] = ("uid-runner-5", .object([])); $0.jobCreated["runner-5"] = 0
        }
        github.state.withLock { $0.runners[900] = "runner-5-abcde" }

        let first = try await reconciler(secretDeadline: .seconds(60)).cycle()
        // The stuck Job went, its registration with it, and the queued job got a fresh runner in the same cycle.
        #expect(first.recovered == 1)
        #expect(kubernetes.jobNames == ["runner-5"] && kubernetes.secretNames == ["runner-5"])
        #expect(github.runners.count == 1 && github.runners[900] == nil)
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(text.contains(#"runners_reaped_total{reason="no_secret"} 1"#))
        #expect(text.contains(#"runners_reaped_total{reason="orphan_registration"} 1"#))
    }

    @Test func leavesRegistrationsWhoseJobExistsAndNamesItDidNotGive() async throws {
        _ = try await kubernetes.createJob(.object([("metadata", .object([("name", "runner-7")]))]), namespace: "ns")
        github.state.withLock {
            $0.runners[1] = "runner-7-abcde"  // its Job exists
            $0.runners[2] = "my-own-runner"  // not ours
            $0.runners[3] = "runner-8-ABCDE"  // not the shape we give
        }
        _ = try await reconciler(secretDeadline: .seconds(3600)).cycle()
        #expect(github.runners.keys.sorted() == [1, 2, 3])
        #expect(kubernetes.jobNames == ["runner-7"])  // young: not reaped yet
    }

    /// A runner made for job 30, whose job was then cancelled: it idles, and no queued job fits it.
    func idleRunner(labels: [String] = ["self-hosted", "gpu"]) async throws -> Int64 {
        github.queue(job: 30, run: 300, labels: labels)
        #expect(try await reconciler(secretDeadline: .seconds(3600)).cycle().recovered == 1)
        github.state.withLock { $0.jobs[30]?.status = "completed" }
        return try #require(github.runners.keys.first)
    }

    @Test func removesAnIdleRunnerNoQueuedJobCanUse() async throws {
        _ = try await idleRunner()
        github.queue(job: 31, run: 310, labels: ["self-hosted", "arm64"])  // queued, but the runner does not fit it
        let reaper = try reconciler(secretDeadline: .seconds(3600), idleTimeout: .zero)
        await reaper.cycle()
        #expect(github.runners.values.allSatisfy { !$0.hasPrefix("runner-30-") })
        #expect(!kubernetes.jobNames.contains("runner-30"))
        #expect(
            String(decoding: metrics.exposition(), as: UTF8.self).contains(#"runners_reaped_total{reason="idle"} 1"#)
        )
    }

    @Test func keepsAnIdleRunnerThatAQueuedJobCanUseOrThatIsBusy() async throws {
        let id = try await idleRunner()
        github.queue(job: 32, run: 320, labels: ["gpu"])  // fits the idle runner's labels: it will take it
        let reaper = try reconciler(secretDeadline: .seconds(3600), idleTimeout: .zero)
        await reaper.cycle()
        #expect(github.runners[id] != nil && kubernetes.jobNames.contains("runner-30"))
        github.state.withLock {
            $0.jobs[32]?.status = "completed"; $0.busy.insert(id)
        }  // now running something
        await reaper.cycle()
        #expect(github.runners[id] != nil && kubernetes.jobNames.contains("runner-30"))
    }

    @Test func waitsForTheIdleTimeout() async throws {
        let id = try await idleRunner()
        let reaper = try reconciler(secretDeadline: .seconds(3600), idleTimeout: .seconds(600))
        await reaper.cycle()
        await reaper.cycle()
        #expect(github.runners[id] != nil)
    }

    @Test func removesAJobWhosePodPodSecurityRejectedAndHoldsTheJobOff() async throws {
        github.queue(job: 50, run: 500)
        let reaper = try reconciler(secretDeadline: .seconds(3600))
        #expect(await reaper.cycle().recovered == 1)
        let message =
            #"pods "runner-50-x7k2p" is forbidden: violates PodSecurity "baseline:latest": privileged (container "dind" must not set securityContext.privileged=true)"#
        kubernetes.state.withLock {
            $0.events = [JobEvent(jobName: "runner-50", reason: "FailedCreate", message: message)]
        }
        let second = await reaper.cycle()
        #expect(!kubernetes.jobNames.contains("runner-50"))
        #expect(second.recovered == 0)  // held off: the same pod would be rejected again
        #expect(logs.text.contains("violates PodSecurity"))
        #expect(
            String(decoding: metrics.exposition(), as: UTF8.self).contains(
                #"runners_reaped_total{reason="failed_create"} 1"#
            )
        )
    }

    @Test func removesJobsWhosePodsCannotPullOrBeScheduledPastTheirDeadline() async throws {
        github.queue(job: 51, run: 510)
        github.queue(job: 52, run: 520)
        github.queue(job: 53, run: 530)
        let reaper = try reconciler(secretDeadline: .seconds(3600))
        #expect(await reaper.cycle().recovered == 3)
        let now = Timestamps.now()
        kubernetes.state.withLock {
            $0.pods = [
                PodSummary(
                    name: "runner-51-a",
                    jobName: "runner-51",
                    createdAt: now - 400,
                    waitingReasons: ["ImagePullBackOff"],
                    unschedulable: nil
                ),
                PodSummary(
                    name: "runner-52-a",
                    jobName: "runner-52",
                    createdAt: now - 60,
                    waitingReasons: ["ImagePullBackOff"],
                    unschedulable: nil
                ),
                PodSummary(
                    name: "runner-53-a",
                    jobName: "runner-53",
                    createdAt: now - 700,
                    waitingReasons: [],
                    unschedulable: "0/3 nodes are available: 3 Insufficient cpu."
                ),
            ]
        }
        await reaper.cycle()
        #expect(kubernetes.jobNames == ["runner-52"])  // still inside its deadline
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(text.contains(#"runners_reaped_total{reason="image_pull"} 1"#))
        #expect(text.contains(#"runners_reaped_total{reason="unschedulable"} 1"#))
        #expect(logs.text.contains("Insufficient cpu"))
    }

    @Test func readsJobIDsFromRunnerNames() {
        #expect(RunnerRequest.jobID(ofRunnerNamed: "runner-289782451-a1b2c") == 289_782_451)
        #expect(RunnerRequest.jobID(ofRunnerNamed: "runner-7-after-8-a1b2c") == 7)
        #expect(RunnerRequest.jobID(ofRunnerNamed: "runner-1-abcd") == nil)
        #expect(RunnerRequest.jobID(ofRunnerNamed: "runner-x-abcde") == nil)
        #expect(RunnerRequest.jobID(ofRunnerNamed: "runner-7-before-8-a1b2c") == nil)
        #expect(RunnerRequest.jobID(ofRunnerNamed: "ghost-1-abcde") == nil)
        #expect(RunnerRequest.jobID(ofRunnerNamed: "GitHub Actions 5") == nil)
    }
}
