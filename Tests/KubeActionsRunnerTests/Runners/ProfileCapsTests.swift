import Foundation
import Testing

@testable import HTTPServer
@testable import Kubernetes
@testable import Observability
@testable import Runners
@testable import Support
@testable import TestSupport
@testable import Webhook

/// `maxRunners`: over a profile's cap nothing is made and the delivery is deferred; the reconciler provisions the job
/// once a place frees. Counted from the cluster, exact under a burst.
@Suite struct ProfileCapsTests {
    let github = FakeGitHubAPI()
    let kubernetes = FakeKubernetesAPI()
    let metrics = Metrics()
    let logs = LogCapture()

    func profiles(cap: Int, labels: [String]? = nil) -> RunnerProfileStore {
        RunnerProfileStore(
            RunnerProfiles([
                RunnerProfile(
                    name: "capped",
                    matcher: .selfHosted,
                    runnerLabels: labels,
                    settings: Samples.settings(.standard),
                    maxRunners: cap
                )
            ])
        )
    }

    func provisioner(_ profiles: RunnerProfileStore) -> JITRunnerProvisioner {
        JITRunnerProvisioner(
            github: github,
            kubernetes: kubernetes,
            settings: Samples.settings(.standard),
            runnerGroupID: 1,
            monitor: ClusterMonitor(kubernetes: kubernetes, namespace: "ns", metrics: metrics, logger: logs.logger()),
            clock: ImmediateClock(),
            logger: logs.logger(),
            profiles: profiles
        )
    }

    static func request(_ job: Int64) -> RunnerRequest {
        RunnerRequest(
            owner: "octo",
            repository: "repo",
            jobID: job,
            runID: 1,
            jobName: "build",
            labels: ["self-hosted"],
            deliveryID: "d-\(job)"
        )
    }

    /// Every one of the 12 provisionings lists the profile's Jobs before any creates one (the fake answers the lists
    /// together), so each sees an empty cluster: counting from the list alone would create 12.
    @Test func aBurstAgainstACapCreatesExactlyTheCap() async throws {
        let burst = 12
        for job in 1...burst { github.queue(job: Int64(job)) }
        kubernetes.state.withLock { $0.listJobsCallers = burst }
        let provisioner = provisioner(profiles(cap: 3))
        let outcomes = await withTaskGroup(of: ProvisionOutcome?.self) { group in
            for job in 1...burst {
                group.addTask { try? await provisioner.provision(Self.request(Int64(job))) }
            }
            var outcomes: [ProvisionOutcome?] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        let created = outcomes.filter { if case .created? = $0 { true } else { false } }
        let deferred = outcomes.compactMap { outcome -> String? in
            if case .deferred(let reason)? = outcome { reason } else { nil }
        }
        #expect(created.count == 3)
        #expect(deferred.count == burst - 3)
        #expect(deferred.allSatisfy { $0 == "profile capped: 3 of maxRunners 3 active" })
        #expect(kubernetes.jobNames.count == 3 && kubernetes.secretNames.count == 3)
        #expect(github.calls.filter { $0.hasPrefix("jit") }.count == 3)
        // The race was there: every list answered before the first create.
        let calls = kubernetes.calls
        let firstCreate = try #require(calls.firstIndex { $0.hasPrefix("create job") })
        #expect(calls[..<firstCreate].filter { $0 == "list jobs" }.count == burst)
        // Every created Job carries the profile's label, which is what the count selects on.
        let labels = kubernetes.state.withLock { $0.jobs.values.map { $0.labels[RunnerProfile.profileLabel] } }
        #expect(labels == ["capped", "capped", "capped"])
    }

    @Test func aFinishedRunnerFreesItsPlace() async throws {
        for job in 1...3 { github.queue(job: Int64(job)) }
        let provisioner = provisioner(profiles(cap: 2))
        #expect(try await provisioner.provision(Self.request(1)) == .created(runnerJob: "runner-1"))
        #expect(try await provisioner.provision(Self.request(2)) == .created(runnerJob: "runner-2"))
        #expect(
            try await provisioner.provision(Self.request(3))
                == .deferred(reason: "profile capped: 2 of maxRunners 2 active")
        )
        kubernetes.state.withLock { $0.jobs["runner-1"]?.finished = true }
        #expect(try await provisioner.provision(Self.request(3)) == .created(runnerJob: "runner-3"))
    }

    /// A provisioning that fails after taking a place gives it back.
    @Test func aFailedProvisioningFreesItsPlace() async throws {
        for job in 1...2 { github.queue(job: Int64(job)) }
        let provisioner = provisioner(profiles(cap: 1))
        kubernetes.state.withLock { $0.createJobFaults = [FakeKubernetesAPI.error(.forbidden, status: 403)] }
        await #expect(throws: ProvisioningError.self) { try await provisioner.provision(Self.request(1)) }
        #expect(try await provisioner.provision(Self.request(2)) == .created(runnerJob: "runner-2"))
    }

    /// The runner registers with the profile's labels (and the owner marker), not the job's.
    @Test func registersTheProfilesLabels() async throws {
        github.queue(job: 1)
        let provisioner = provisioner(profiles(cap: 5, labels: ["self-hosted", "linux", "x64"]))
        #expect(try await provisioner.provision(Self.request(1)) == .created(runnerJob: "runner-1"))
        let registered = github.state.withLock { Array($0.runnerLabels.values) }
        #expect(registered == [["self-hosted", "linux", "x64", Samples.ownerLabel]])
    }

    /// Deferred jobs wait in GitHub's queue; the reconciler provisions them as places free.
    @Test func theReconcilerProvisionsDeferredJobsWhenAPlaceFrees() async throws {
        for job in 1...3 { github.queue(job: Int64(job)) }
        let reconciler = Reconciler.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            matcher: .selfHosted,
            provisioner: provisioner(profiles(cap: 1))
        )
        let first = await reconciler.cycle()
        #expect(first.recovered == 1 && first.result == "partial")
        #expect(kubernetes.jobNames == ["runner-1"])
        let second = await reconciler.cycle()
        #expect(second.recovered == 0)
        #expect(kubernetes.jobNames == ["runner-1"])
        kubernetes.state.withLock { $0.jobs["runner-1"]?.finished = true }
        github.state.withLock { $0.jobs[1]?.status = "completed" }
        let third = await reconciler.cycle()
        #expect(third.recovered == 1)
        #expect(kubernetes.jobNames.count == 2)
    }

    /// A delivery over the cap is answered 202 `deferred` and counted, as a spent content budget is.
    @Test func aDeliveryOverTheCapIsAnswered202Deferred() async throws {
        github.queue(job: 1)
        github.queue(job: 289_782_451)  // the fixture delivery's job
        let profiles = profiles(cap: 1)
        let provisioner = provisioner(profiles)
        #expect(try await provisioner.provision(Self.request(1)) == .created(runnerJob: "runner-1"))
        let handler = WebhookHandler(
            verifier: SignatureVerifier(secrets: [Secret(Fixtures.secret)]),
            matcher: profiles,
            deliveries: DeliveryLog(),
            provisioner: provisioner,
            metrics: metrics,
            logger: logs.logger()
        )
        var json =
            try JSONSerialization.jsonObject(with: Data(try Fixtures.bytes("github/workflow_job.queued.payload.json")))
            as! [String: Any]
        var job = json["workflow_job"] as! [String: Any]
        job["labels"] = ["self-hosted"]
        json["workflow_job"] = job
        let body = Array(try JSONSerialization.data(withJSONObject: json))
        let response = await handler.handle(
            HTTPRequest(
                method: "POST",
                target: "/webhook",
                headers: HTTPHeaders(
                    deliveryHeaders(event: "workflow_job", body: body).map { (name: $0.0, value: $0.1) }
                ),
                body: body
            )
        )
        #expect(response.status == 202)
        let answer = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        #expect(answer?["outcome"] as? String == "deferred")
        let exposition = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(exposition.contains(#"webhook_outcomes_total{outcome="deferred"} 1"#))
        #expect(logs.text.contains("profile capped: 1 of maxRunners 1 active"))
        #expect(kubernetes.jobNames == ["runner-1"])
    }

    /// A replacement asked for by a delivery knows no labels: the job is read from GitHub first, and its labels
    /// choose the profile; it is read once.
    @Test func aReplacementReadsTheJobsLabelsBeforeChoosingItsProfile() async throws {
        github.queue(job: 5, labels: ["self-hosted", "gpu"])
        var gpu = RunnerProfile(
            name: "gpu",
            matcher: try LabelMatcher(parsing: "gpu"),
            runnerLabels: ["self-hosted", "gpu"],
            settings: Samples.settings(.standard)
        )
        gpu.pod.runtimeClassName = "nvidia"
        let store = RunnerProfileStore(
            RunnerProfiles([gpu, RunnerProfile(name: "other", matcher: .selfHosted, settings: Samples.settings(.dind))])
        )
        var request = Self.request(5)
        request.labels = []
        request.replacing = 7
        #expect(try await provisioner(store).provision(request) == .created(runnerJob: "runner-5-after-7"))
        let job = try #require(kubernetes.state.withLock { $0.jobs["runner-5-after-7"] })
        #expect(job.labels[RunnerProfile.profileLabel] == "gpu")
        #expect(job.manifest["spec"]?["template"]?["spec"]?["runtimeClassName"] == "nvidia")
        #expect(github.calls.filter { $0 == "job 5" }.count == 1)
        #expect(
            github.state.withLock { Array($0.runnerLabels.values) } == [["self-hosted", "gpu", Samples.ownerLabel]]
        )
    }

    /// A capped profile's long queue does not take the reconciler's provisionings of a cycle from other jobs: a
    /// deferral made no call, so it counts neither as a provisioning nor as points.
    @Test func jobsDeferredByACapDoNotStarveOthersInTheReconciler() async throws {
        for job in 1...25 { github.queue(job: Int64(job), labels: ["self-hosted", "gpu"]) }
        github.queue(job: 100, labels: ["self-hosted", "linux"])
        let store = RunnerProfileStore(
            RunnerProfiles([
                RunnerProfile(
                    name: "gpu",
                    matcher: try LabelMatcher(parsing: "gpu"),
                    settings: Samples.settings(.standard),
                    maxRunners: 1
                ),
                RunnerProfile(name: "rest", matcher: .selfHosted, settings: Samples.settings(.standard)),
            ])
        )
        let reconciler = Reconciler.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            matcher: .selfHosted,
            provisioner: provisioner(store)
        )
        let summary = await reconciler.cycle()
        #expect(summary.recovered == 2)
        #expect(kubernetes.jobNames == ["runner-1", "runner-100"])
        // Two provisionings and the cycle's lists; the 24 deferrals would have been 144 more.
        #expect(reconciler.budget.spentThisMinute < 3 * (PointsBudget.read + PointsBudget.write))
    }
}
