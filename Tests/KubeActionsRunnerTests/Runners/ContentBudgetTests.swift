import Synchronization
import Testing

@testable import Kubernetes
@testable import Observability
@testable import Runners
@testable import TestSupport

/// GitHub's content-creating limits kept per credential: JIT configurations and runner deletions, so many a minute
/// and an hour; what is over is deferred (a delivery) or left for a later cycle (the reconciler).
@Suite struct ContentBudgetTests {
    let github = FakeGitHubAPI()
    let kubernetes = FakeKubernetesAPI()
    let metrics = Metrics()
    let logs = LogCapture()
    let time = ManualClock()

    @Test func spendsSoManyAMinuteAndAnHourPerCredential() {
        let budget = ContentBudget(.init(perMinute: 2, perHour: 3), clock: time)
        #expect(budget.take("a") == nil && budget.take("a") == nil)
        #expect(budget.take("a") == "content-creating requests: 2 a minute spent")
        #expect(budget.take("b") == nil)  // another credential
        time.advance(by: .seconds(60))
        #expect(budget.take("a") == nil)
        #expect(budget.take("a") == "content-creating requests: 3 an hour spent")
        time.advance(by: .seconds(3540))
        #expect(budget.take("a") == nil)  // the first two are an hour old
    }

    func provisioner(_ budget: ContentBudget) -> JITRunnerProvisioner {
        JITRunnerProvisioner(
            github: github,
            kubernetes: kubernetes,
            settings: Samples.settings(.standard),
            runnerGroupID: 1,
            monitor: ClusterMonitor(kubernetes: kubernetes, namespace: "ns", metrics: metrics, logger: logs.logger()),
            clock: ImmediateClock(),
            logger: logs.logger(),
            contentBudget: budget,
            contentKey: { $0 }
        )
    }

    func request(_ id: Int64, owner: String = "octo") -> RunnerRequest {
        RunnerRequest(
            owner: owner,
            repository: "repo",
            jobID: id,
            runID: id,
            jobName: "build",
            labels: ["self-hosted"],
            deliveryID: "d"
        )
    }

    @Test func defersAProvisioningOverTheBudgetBeforeMakingAnything() async throws {
        let provisioner = provisioner(ContentBudget(.init(perMinute: 1, perHour: 500), clock: time))
        for id: Int64 in 1...3 { github.queue(job: id, run: id) }
        #expect(try await provisioner.provision(request(1)) == .created(runnerJob: "runner-1"))
        #expect(
            try await provisioner.provision(request(2))
                == .deferred(reason: "content-creating requests: 1 a minute spent")
        )
        #expect(kubernetes.jobNames == ["runner-1"])
        #expect(github.calls.filter { $0.hasPrefix("jit") }.count == 1)
        #expect(logs.text.contains("provisioning deferred"))
        #expect(try await provisioner.provision(request(3, owner: "other")) == .created(runnerJob: "runner-3"))
    }

    @Test func theReconcilerProvisionsADeferredJobOnceTheBudgetFrees() async throws {
        let budget = ContentBudget(.init(perMinute: 1, perHour: 500), clock: time)
        github.queue(job: 1, run: 1)
        github.queue(job: 2, run: 2)
        let reconciler = Reconciler.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            clock: time,
            provisioner: provisioner(budget),
            contentBudget: budget,
            contentKey: { $0 }
        )
        let first = await reconciler.cycle()
        #expect(first.recovered == 1 && first.result == "partial")
        time.advance(by: .seconds(60))
        let second = await reconciler.cycle()
        #expect(second.recovered == 1)
        #expect(kubernetes.jobNames == ["runner-1", "runner-2"])
    }

    @Test func theReapersKeepARegistrationWhileTheBudgetIsSpent() async throws {
        let budget = ContentBudget(.init(perMinute: 1, perHour: 500), clock: time)
        let orphan = github.register("runner-7-abcde", labels: ["self-hosted", Samples.ownerLabel])
        _ = budget.take("octo")  // the minute's one request is spent
        let reconciler = Reconciler.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            clock: time,
            provisioner: provisioner(budget),
            contentBudget: budget,
            contentKey: { $0 }
        )
        await reconciler.cycle()
        time.advance(by: .seconds(31))
        await reconciler.cycle()
        #expect(github.runners[orphan] != nil && !github.calls.contains { $0.hasPrefix("delete") })
        // The budget frees within the minute; a repository no runner Job serves has its registrations listed again
        // a quarter of an hour after the last list.
        time.advance(by: .seconds(900))
        await reconciler.cycle()
        #expect(github.runners[orphan] == nil)
    }
}
