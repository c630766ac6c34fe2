import Synchronization
import Testing

@testable import App
@testable import GitHub
@testable import Kubernetes
@testable import Observability
@testable import Runners
@testable import Support
@testable import TestSupport

/// Every reaper rule, with a clock the tests advance: no test sleeps for a rule's timeout.
@Suite struct ReaperTests {
    let github = FakeGitHubAPI()
    let kubernetes = FakeKubernetesAPI()
    let metrics = Metrics()
    let logs = LogCapture()
    let time = ManualClock()
    let leading = Flag()

    final class Flag: Sendable {
        let value = Mutex(true)
        func withLock<T: Sendable>(_ body: @Sendable (inout Bool) -> T) -> T { value.withLock { body(&$0) } }
    }

    static let marker = Samples.ownerLabel

    /// A reconciler over the fakes; it leads while `leading` is set, unless `isLeader` decides instead.
    func reconciler(
        _ change: (inout Reconciler.Configuration) -> Void = { _ in },
        isLeader: (@Sendable () -> Bool)? = nil
    ) -> Reconciler {
        var configuration = Reconciler.Configuration()
        configuration.secretDeadline = .seconds(30)
        configuration.idleTimeout = .seconds(600)
        change(&configuration)
        let leading = self.leading
        return Reconciler.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            configuration: configuration,
            clock: time,
            isLeader: isLeader ?? { leading.withLock { $0 } }
        )
    }

    var exposition: String { String(decoding: metrics.exposition(), as: UTF8.self) }

    func reaped(_ reason: String) -> Bool {
        exposition.contains(#"runners_reaped_total{reason="\#(reason)"} 1"#)
    }

    /// Labels of a runner Job of this deployment for `job`.
    func ourLabels(job: Int64, instance: String = ReaperTests.marker) -> [String: String] {
        [
            "app.kubernetes.io/managed-by": "kube-actions-runner", "app.kubernetes.io/instance": instance,
            "kube-actions-runner/job-id": String(job),
        ]
    }

    /// Provisions queued `job` through a reconciler cycle; returns its registration's id.
    func provisioned(_ job: Int64, labels: [String] = ["self-hosted"], reaper: Reconciler) async throws -> Int64 {
        github.queue(job: job, run: job * 10, labels: labels)
        await reaper.cycle()
        let id = github.state.withLock { state in
            state.runners.first { RunnerName(parsing: $0.value, as: .registration)?.jobID == job }?.key
        }
        return try #require(id)
    }

    // MARK: - Ownership

    @Test func repairsAProvisioningInterruptedBetweenTheJobAndItsSecret() async throws {
        github.queue(job: 5, run: 50)
        // A process killed after round 2: the Job and a registration exist, the Secret does not.
        kubernetes.addJob("runner-5", labels: ourLabels(job: 5))
        github.register("runner-5-abcde", labels: ["self-hosted", Self.marker], id: 900)
        let reaper = reconciler()
        #expect(await reaper.cycle().recovered == 0)  // first seen: nothing removed yet
        #expect(kubernetes.jobNames == ["runner-5"] && github.runners[900] != nil)
        time.advance(by: .seconds(31))
        let second = await reaper.cycle()
        // The stuck Job went, its registration too, and the queued job got a fresh runner in the same cycle (under the
        // next name: a removed Job's Secret may outlive it for a moment).
        #expect(second.recovered == 1)
        #expect(kubernetes.jobNames == ["runner-5-r2"] && kubernetes.secretNames == ["runner-5-r2"])
        #expect(github.runners.count == 1 && github.runners[900] == nil)
        #expect(reaped("no_secret") && reaped("orphan_registration"))
    }

    @Test func neverTouchesRegistrationsOrJobsWithoutThisDeploymentsMarker() async throws {
        // Named like ours, but hand-made or another deployment's (the campaign's real losses).
        let foreign = [
            github.register("runner-1-linux", labels: ["self-hosted", "linux"]),
            github.register("runner-2-build", labels: ["self-hosted", "linux"]),
            github.register("runner-900000001-k3x9q", labels: ["self-hosted", "kar-other-namespace"]),
        ]
        kubernetes.addJob("runner-900000001", labels: ourLabels(job: 900_000_001, instance: "kar-other-namespace"))
        let reaper = reconciler { $0.idleTimeout = .zero }
        await reaper.cycle()
        time.advance(by: .seconds(3600))
        await reaper.cycle()
        #expect(Set(github.runners.keys) == Set(foreign))
        #expect(kubernetes.jobNames == ["runner-900000001"])
        #expect(!github.calls.contains { $0.hasPrefix("delete") })
        #expect(!kubernetes.calls.contains { $0.hasPrefix("delete") })
    }

    // MARK: - Busy-safe reaping

    /// The bug the campaign measured: a JIT call that registered `a` and answered 500, a retry that registered `b`,
    /// and `b` at work. `a` idles and goes, as a leftover; the Job of `b` stays.
    @Test func deletesTheLeftoverOfAFailedButEffectiveJITCallAndKeepsTheRunnerAtWork() async throws {
        github.state.withLock { $0.jitEffectiveFaults = [FakeGitHubAPI.error(.server, status: 500)] }
        let reaper = reconciler()
        let job: Int64 = 40
        github.queue(job: job, run: 400)
        await reaper.cycle()
        let (leftover, recorded) = try github.state.withLock { state in
            (try #require(state.runners[100]), try #require(state.runners[101]))
        }
        #expect(leftover.hasPrefix("runner-40-") && recorded.hasPrefix("runner-40-"))
        let secret = try #require(kubernetes.state.withLock { $0.secrets["runner-40"] })
        #expect(secret["metadata"]?["labels"]?["kube-actions-runner/runner-id"] == "101")
        github.start(runner: 101, on: job)  // the retry's runner takes the job
        for _ in 0..<3 {
            time.advance(by: .seconds(700))  // past the leftover grace and the idle timeout
            await reaper.cycle()
        }
        #expect(github.runners[100] == nil)  // the leftover went
        #expect(github.runners[101] == recorded && kubernetes.jobNames == ["runner-40"])  // the runner at work stayed
        #expect(reaped("leftover_registration"))
        #expect(!exposition.contains(#"runners_reaped_total{reason="idle"} 1"#))
    }

    @Test func theIdleRuleRemovesAJobOnlyWithTheRegistrationRecordedOnIt() async throws {
        let reaper = reconciler()
        let id = try await provisioned(30, labels: ["self-hosted", "gpu"], reaper: reaper)
        github.state.withLock { $0.jobs[30]?.status = "completed" }  // cancelled: nothing for it to do
        // GitHub says it became busy just as the reaper deletes it (422): the registration and the Job stay.
        github.state.withLock { $0.deleteFaults = [FakeGitHubAPI.error(.validation, status: 422)] }
        await reaper.cycle()
        time.advance(by: .seconds(601))
        await reaper.cycle()
        #expect(github.runners[id] != nil && kubernetes.jobNames == ["runner-30"])
        // Next cycle it is idle still: the recorded registration is deleted, then its Job.
        await reaper.cycle()
        #expect(github.runners[id] == nil && kubernetes.jobNames.isEmpty)
        #expect(reaped("idle"))
    }

    @Test func keepsTheJobWhenItsRecordedRegistrationIsAlreadyGone() async throws {
        let reaper = reconciler()
        let id = try await provisioned(31, reaper: reaper)
        github.state.withLock { $0.jobs[31]?.status = "completed" }
        time.advance(by: .seconds(601))
        // Deleted behind the reaper's back between its list and its delete: 404, so not the one it deleted.
        github.state.withLock { $0.deleteFaults = [FakeGitHubAPI.error(.notFound, status: 404)] }
        await reaper.cycle()
        #expect(kubernetes.jobNames == ["runner-31"])
        #expect(github.runners[id] != nil)
    }

    @Test func neverRemovesTheJobOfABusyRunnerWhateverItsPodLooksLike() async throws {
        let reaper = reconciler()
        let id = try await provisioned(32, reaper: reaper)
        kubernetes.runJobController()
        github.start(runner: id, on: 32)
        kubernetes.updatePod(of: "runner-32") { pod in
            pod.containers.append(ContainerSummary(name: "dind", isInit: true, waitingReason: "CrashLoopBackOff"))
        }
        await reaper.cycle()
        time.advance(by: .seconds(3600))
        await reaper.cycle()
        #expect(kubernetes.jobNames == ["runner-32"] && github.runners[id] != nil)
        #expect(logs.text.contains("its runner is at work"))
    }

    /// A repository with more registrations than the list limit: a recorded registration missing from the list is
    /// not proof that it is gone, so a Job whose runner may be at work stays.
    @Test func keepsAJobWhoseRegistrationIsBeyondTheListLimit() async throws {
        for index in 0..<GitHubListing.limit { github.register("static-\(index)", labels: ["self-hosted"]) }
        let reaper = reconciler()
        let id = try await provisioned(33, reaper: reaper)
        #expect(id >= 100 + Int64(GitHubListing.limit))  // not in the list
        kubernetes.runJobController()
        github.start(runner: id, on: 33)
        kubernetes.updatePod(of: "runner-33") { pod in
            pod.containers.append(ContainerSummary(name: "dind", isInit: true, waitingReason: "CrashLoopBackOff"))
        }
        await reaper.cycle()
        #expect(kubernetes.jobNames == ["runner-33"] && github.runners[id] != nil)
    }

    /// A runner that takes a job between the reaper's fresh look and its removal: GitHub refuses to delete it (422),
    /// so its Job stays, and the pod's trouble does not kill the job it now runs.
    @Test func aRunnerThatTakesAJobAsItIsRemovedKeepsItsJob() async throws {
        let reaper = reconciler()
        let id = try await provisioned(34, reaper: reaper)
        kubernetes.runJobController()
        kubernetes.updatePod(of: "runner-34") { pod in
            pod.containers.append(ContainerSummary(name: "dind", isInit: true, waitingReason: "CrashLoopBackOff"))
        }
        github.state.withLock { $0.deleteFaults = [FakeGitHubAPI.error(.validation, status: 422)] }
        await reaper.cycle()
        #expect(kubernetes.jobNames == ["runner-34"] && github.runners[id] != nil)
        #expect(!reaped("crash_loop"))
        #expect(logs.text.contains("registration became busy; kept"))
        // Once GitHub lets the registration go, the Job follows it.
        await reaper.cycle()
        #expect(kubernetes.jobNames.isEmpty && github.runners[id] == nil)
        #expect(reaped("crash_loop"))
    }

    /// A runner Job of a repository the leader does not know (its list of repositories lost one): its recorded
    /// registration cannot be looked at, so nothing proves it idle, and the Job stays.
    @Test func keepsAJobOfARepositoryTheReconcilerDoesNotKnow() async throws {
        let reaper = reconciler()
        var labels = ourLabels(job: 41)
        labels["kube-actions-runner/owner"] = "elsewhere"
        labels["kube-actions-runner/repo"] = "x"
        let uid = kubernetes.addJob("runner-41", labels: labels)
        let id = github.register(
            "runner-41-abcde",
            labels: ["self-hosted", Self.marker],
            busy: true,
            repository: "elsewhere/x"
        )
        try await kubernetes.createSecret(
            .object([
                (
                    "metadata",
                    .object([
                        ("name", "runner-41"),
                        (
                            "labels",
                            .object(
                                labels.map { ($0.key, JSONValue.string($0.value)) } + [
                                    (RunnerJob.runnerIDLabel, .string(String(id))),
                                    (RunnerJob.runnerNameLabel, JSONValue.string("runner-41-abcde")),
                                ]
                            )
                        ),
                        ("ownerReferences", .array([.object([("uid", .string(uid))])])),
                    ])
                )
            ]),
            namespace: "runners"
        )
        kubernetes.runJobController()
        kubernetes.updatePod(of: "runner-41") { pod in
            pod.containers.append(ContainerSummary(name: "dind", isInit: true, waitingReason: "CrashLoopBackOff"))
        }
        await reaper.cycle()
        #expect(kubernetes.jobNames == ["runner-41"] && github.runners[id] != nil)
        #expect(logs.text.contains("the repository of its runner is not known"))
    }

    /// More queued runs than the list limit: a runner whose job is not in the list is not surplus.
    @Test func keepsIdleRunnersWhileQueuedRunsReachTheListLimit() async throws {
        let reaper = reconciler()
        let id = try await provisioned(35, reaper: reaper)
        for job in Int64(10_000)..<Int64(10_000 + GitHubListing.limit) {
            github.queue(job: job, run: job, labels: ["gpu"])
        }
        github.state.withLock { $0.jobs[35]?.status = "completed" }
        time.advance(by: .seconds(601))
        await reaper.cycle()
        time.advance(by: .seconds(601))
        await reaper.cycle()
        #expect(github.runners[id] != nil && kubernetes.jobNames.contains("runner-35"))
        #expect(!reaped("idle"))
    }

    // MARK: - Pods that cannot run, or must wait

    /// A refusal that is not final (an admission webhook that timed out): the Job controller retries, so the Job
    /// waits, and goes only after the pod start deadline.
    @Test func aPassingRefusalIsAWaitUntilThePodStartDeadline() async throws {
        let reaper = reconciler()
        _ = try await provisioned(55, reaper: reaper)
        let uid = try #require(kubernetes.uid(of: "runner-55"))
        let message =
            #"Internal error occurred: failed calling webhook "policy.example.com": context deadline exceeded"#
        kubernetes.state.withLock {
            $0.events = [JobEvent(jobName: "runner-55", reason: "FailedCreate", message: message, jobUID: uid)]
        }
        await reaper.cycle()
        #expect(kubernetes.jobNames.contains("runner-55"))
        #expect(exposition.contains(#"runner_jobs_waiting{reason="refused"} 1"#))
        time.advance(by: .seconds(301))
        await reaper.cycle()
        #expect(!kubernetes.jobNames.contains("runner-55"))
        #expect(reaped("failed_create"))
    }

    /// Without the pods, an event cannot be told from one older than a pod that now runs: it condemns nothing.
    @Test func readsNoEventWhenThePodsCouldNotBeListed() async throws {
        let reaper = reconciler()
        _ = try await provisioned(56, reaper: reaper)
        let uid = try #require(kubernetes.uid(of: "runner-56"))
        kubernetes.state.withLock {
            $0.events = [
                JobEvent(
                    jobName: "runner-56",
                    reason: "FailedCreate",
                    message: "pods is forbidden: violates PodSecurity",
                    jobUID: uid
                )
            ]
            $0.listPodsFaults = [FakeKubernetesAPI.error(.unavailable, status: 503)]
        }
        await reaper.cycle()
        #expect(kubernetes.jobNames.contains("runner-56"))
    }

    @Test func aQuotaIsAWaitAndThePodStartsWhenItFrees() async throws {
        let reaper = reconciler()
        kubernetes.state.withLock { $0.podQuota = 0 }
        _ = try await provisioned(50, reaper: reaper)
        kubernetes.runJobController()  // refused: a FailedCreate event on the Job's uid
        #expect(kubernetes.state.withLock { $0.events.count } == 1)
        for _ in 0..<3 {
            time.advance(by: .seconds(60))
            kubernetes.runJobController()
            await reaper.cycle()
        }
        #expect(kubernetes.jobNames == ["runner-50"])
        #expect(exposition.contains(#"runner_jobs_waiting{reason="quota"} 1"#))
        #expect(logs.text.contains("runner job waits; kept") && logs.text.contains("exceeded quota"))
        kubernetes.state.withLock { $0.podQuota = nil }
        kubernetes.runJobController()
        await reaper.cycle()
        // The pod exists; the old event is older than it and condemns nothing.
        #expect(kubernetes.state.withLock { $0.pods.count } == 1)
        #expect(exposition.contains(#"runner_jobs_waiting{reason="quota"} 0"#))
        #expect(kubernetes.jobNames == ["runner-50"])
    }

    @Test func removesAJobWhosePodPodSecurityRejectedAndHoldsTheJobOff() async throws {
        let reaper = reconciler()
        _ = try await provisioned(51, reaper: reaper)
        let uid = try #require(kubernetes.uid(of: "runner-51"))
        let message =
            #"pods "runner-51-x7k2p" is forbidden: violates PodSecurity "baseline:latest": privileged (container "dind" must not set securityContext.privileged=true)"#
        kubernetes.state.withLock {
            $0.events = [
                // An event of another Job that once had the same name: not this one.
                JobEvent(jobName: "runner-52", reason: "FailedCreate", message: message, jobUID: "uid-gone"),
                JobEvent(jobName: "runner-51", reason: "FailedCreate", message: message, jobUID: uid),
            ]
        }
        let second = await reaper.cycle()
        #expect(!kubernetes.jobNames.contains("runner-51"))
        #expect(second.recovered == 0)  // held off: the same pod would be rejected again
        #expect(logs.text.contains("violates PodSecurity"))
        #expect(reaped("failed_create"))
        #expect(reaper.state.withLock { $0.heldOff.count } == 1)
        // Once the hold-off ran out the job is provisioned again, and the hold-off is forgotten: the map never
        // grows with every job ever held off.
        kubernetes.state.withLock { $0.events = [] }
        time.advance(by: .seconds(901))
        #expect(await reaper.cycle().recovered == 1)
        #expect(reaper.state.withLock { $0.heldOff.isEmpty })
    }

    @Test func matchesEventsByTheJobsUIDNotItsName() async throws {
        let reaper = reconciler()
        _ = try await provisioned(53, reaper: reaper)
        kubernetes.state.withLock {
            $0.events = [
                JobEvent(
                    jobName: "runner-53",
                    reason: "FailedCreate",
                    message: "pods is forbidden: violates PodSecurity",
                    jobUID: "uid-of-an-earlier-runner-53"
                )
            ]
        }
        await reaper.cycle()
        #expect(kubernetes.jobNames == ["runner-53"])
    }

    @Test(arguments: [
        ("ErrImagePull", "image_pull", 300), ("ImagePullBackOff", "image_pull", 300),
        ("CrashLoopBackOff", "crash_loop", 0), ("RunContainerError", "run_container_error", 0),
    ])
    func reapsAPodThatCannotRunAfterItsDeadline(waiting: String, reason: String, deadline: Int) async throws {
        let reaper = reconciler()
        _ = try await provisioned(54, reaper: reaper)
        kubernetes.runJobController()
        kubernetes.updatePod(of: "runner-54") { pod in
            pod.containers = [ContainerSummary(name: "runner", waitingReason: waiting)]
        }
        if deadline > 0 {
            await reaper.cycle()
            time.advance(by: .seconds(deadline - 1))
            await reaper.cycle()
            #expect(kubernetes.jobNames == ["runner-54"])  // inside its deadline
            time.advance(by: .seconds(2))
        }
        await reaper.cycle()
        #expect(!kubernetes.jobNames.contains("runner-54"))
        #expect(reaped(reason))
    }

    @Test func reapsAPodUnschedulableOrWithDockerdNeverReady() async throws {
        let reaper = reconciler()
        _ = try await provisioned(55, reaper: reaper)
        _ = try await provisioned(56, reaper: reaper)
        kubernetes.runJobController()
        kubernetes.updatePod(of: "runner-55") { $0.unschedulable = "0/3 nodes are available: 3 Insufficient cpu." }
        kubernetes.updatePod(of: "runner-56") { pod in
            pod.containers = [
                ContainerSummary(name: "dind", isInit: true, isRunning: true),
                ContainerSummary(name: "runner", waitingReason: "PodInitializing"),
            ]
        }
        await reaper.cycle()
        time.advance(by: .seconds(301))
        await reaper.cycle()
        #expect(kubernetes.jobNames == ["runner-55"])  // dockerd's deadline is 5 minutes, the scheduler's 10
        time.advance(by: .seconds(300))
        await reaper.cycle()
        #expect(kubernetes.jobNames.isEmpty)
        #expect(reaped("dind_not_ready") && reaped("unschedulable"))
        #expect(logs.text.contains("Insufficient cpu"))
    }

    @Test func reapsARegistrationStillOfflineLongAfterItsPodStarted() async throws {
        let reaper = reconciler()
        let id = try await provisioned(57, reaper: reaper)
        kubernetes.runJobController()
        await reaper.cycle()
        time.advance(by: .seconds(599))
        await reaper.cycle()
        #expect(kubernetes.jobNames == ["runner-57"])
        time.advance(by: .seconds(2))
        await reaper.cycle()
        #expect(github.runners[id] == nil)
        #expect(reaped("never_connected"))
        // The job still waits: it gets a new runner at once.
        #expect(kubernetes.jobNames == ["runner-57-r2"] && github.runners.count == 1)
    }

    @Test func replacesAFinishedJobWhoseJobStillWaitsAtOnceUnderANewName() async throws {
        let reaper = reconciler()
        let id = try await provisioned(58, reaper: reaper)
        kubernetes.finish("runner-58")  // its runner exited before it connected: the Job completed
        await reaper.cycle()
        #expect(github.runners[id] == nil)
        #expect(reaped("runner_exited"))
        #expect(kubernetes.jobNames == ["runner-58", "runner-58-r2"])
        let live = try #require(github.runners.values.first)
        #expect(live.hasPrefix("runner-58-r2-"))
        await reaper.cycle()  // one live runner per job: nothing more
        #expect(kubernetes.jobNames == ["runner-58", "runner-58-r2"] && github.runners.count == 1)
    }

    @Test func reapsARunnerWhoseContainerEndedWithoutTakingTheJob() async throws {
        let reaper = reconciler()
        let id = try await provisioned(59, reaper: reaper)
        kubernetes.runJobController()
        kubernetes.updatePod(of: "runner-59") { pod in
            pod.containers = [ContainerSummary(name: "runner", isTerminated: true)]  // the Job not finished yet
        }
        await reaper.cycle()
        #expect(github.runners[id] == nil)
        #expect(reaped("runner_exited"))
        // The job still waits: in the same cycle, a new Job under the next name. The old one is over (its one try
        // ended: the Job fails or completes on its own) and goes with its TTL, as a finished Job does.
        #expect(kubernetes.jobNames == ["runner-59", "runner-59-r2"])
        #expect(github.runners.count == 1)
    }

    /// A metadata-only Job list says only which Jobs succeeded; a Job whose one pod failed is told from its pods, and
    /// its still-queued job is served again at once.
    @Test func aJobWhosePodFailedIsOverAndItsJobIsServedAgain() async throws {
        let reaper = reconciler()
        _ = try await provisioned(60, reaper: reaper)
        kubernetes.runJobController()
        // The runner crashed before taking the job; its registration is gone (GitHub removes an ephemeral runner
        // that exited), and the Job is not reported finished.
        github.state.withLock { $0.runners.removeAll() }
        kubernetes.updatePod(of: "runner-60") { pod in
            pod.containers = [ContainerSummary(name: "runner", isTerminated: true)]
        }
        let summary = await reaper.cycle()
        #expect(summary.recovered == 1)
        #expect(kubernetes.jobNames == ["runner-60", "runner-60-r2"])
    }

    // MARK: - Supply and demand

    @Test func keepsASpareRunnerOnlyWhileQueuedJobsThatFitItOutnumberTheOtherRunners() async throws {
        let reaper = reconciler()
        let spare = try await provisioned(60, reaper: reaper)
        let a = try await provisioned(61, reaper: reaper)
        let b = try await provisioned(62, reaper: reaper)
        github.state.withLock { $0.jobs[60]?.status = "completed" }  // cancelled: its runner is a spare now
        time.advance(by: .seconds(601))
        await reaper.cycle()
        // 61 and 62 wait, each with its own runner: the spare is surplus and goes with its Job.
        #expect(github.runners[spare] == nil && !kubernetes.jobNames.contains("runner-60"))
        #expect(github.runners[a] != nil && github.runners[b] != nil)
        #expect(kubernetes.jobNames == ["runner-61", "runner-62"])
    }

    @Test func aJobWhoseRunnerTookAnotherIsServedByAFittingIdleRunner() async throws {
        let reaper = reconciler()
        let x = try await provisioned(70, reaper: reaper)
        let y = try await provisioned(71, reaper: reaper)
        github.start(runner: x, on: 71)  // x's runner took job 71; 71's own runner idles, and fits 70
        time.advance(by: .seconds(601))
        await reaper.cycle()
        #expect(kubernetes.jobNames == ["runner-70", "runner-71"])  // no surplus: the idle runner serves 70
        #expect(github.runners[y] != nil)
    }

    @Test func aJobWhoseRunnerTookAnotherGetsTheReplacementTheDeliveryWouldHaveMade() async throws {
        let reaper = reconciler()
        let x = try await provisioned(72, labels: ["self-hosted", "gpu"], reaper: reaper)
        github.queue(job: 73, run: 730, labels: ["self-hosted", "gpu"])
        github.start(runner: x, on: 73)  // no in_progress delivery arrived
        await reaper.cycle()
        #expect(kubernetes.jobNames == ["runner-72", "runner-72-after-73"])
        await reaper.cycle()
        #expect(kubernetes.jobNames == ["runner-72", "runner-72-after-73"] && github.runners.count == 2)
        // The replacement's runner exits without taking the job: the job still gets a runner, under a new name.
        kubernetes.finish("runner-72-after-73")
        await reaper.cycle()
        let third = kubernetes.jobNames.subtracting(["runner-72", "runner-72-after-73"])
        #expect(third.count == 1 && third.allSatisfy { RunnerName(parsing: $0, as: .job)?.attempt == 2 })
        #expect(github.runners.count == 2)  // the busy one, and the new one
    }

    /// The documented policy for jobs waiting for an approval: their runner is surplus (reaped after the idle
    /// timeout, so none idles for days), and once approved the job is queued and its runner, still there, is kept.
    @Test func aJobWaitingForApprovalDoesNotKeepItsRunnerButAnApprovedOneDoes() async throws {
        let reaper = reconciler()
        let approved = try await provisioned(90, reaper: reaper)
        let pending = try await provisioned(91, reaper: reaper)
        github.state.withLock {
            $0.jobs[90]?.status = "waiting"; $0.jobs[91]?.status = "waiting"
        }
        await reaper.cycle()
        time.advance(by: .seconds(300))
        github.state.withLock { $0.jobs[90]?.status = "queued" }  // approved just now
        time.advance(by: .seconds(301))
        await reaper.cycle()
        #expect(github.runners[approved] != nil && kubernetes.jobNames.contains("runner-90"))
        #expect(github.runners[pending] == nil && !kubernetes.jobNames.contains("runner-91"))
    }

    // MARK: - Leadership

    /// A replica that leads again starts its rules' clocks afresh, and stops reporting a quota wait it no longer
    /// watches.
    @Test func aNewTermStartsItsClocksAfreshAndClearsItsGauges() async throws {
        let reaper = reconciler()
        kubernetes.state.withLock { $0.podQuota = 0 }
        _ = try await provisioned(82, reaper: reaper)
        kubernetes.runJobController()
        await reaper.cycle()
        #expect(exposition.contains(#"runner_jobs_waiting{reason="quota"} 1"#))
        reaper.stepDown()
        #expect(exposition.contains(#"runner_jobs_waiting{reason="quota"} 0"#))
        // A Job without its Secret, first seen in the earlier term an hour ago, is seen anew: not removed at once.
        kubernetes.addJob("runner-83", labels: ourLabels(job: 83))
        await reaper.cycle()
        time.advance(by: .seconds(3600))
        reaper.stepDown()
        await reaper.cycle()
        #expect(kubernetes.jobNames.contains("runner-83"))
        time.advance(by: .seconds(31))
        await reaper.cycle()
        #expect(!kubernetes.jobNames.contains("runner-83"))
    }

    /// Leadership lost in the middle of a cycle, right after its first deletion: nothing after it is changed.
    @Test func stopsAtTheFirstChangeAfterLeadershipIsLostMidCycle() async throws {
        let github = self.github
        let armed = Flag()
        armed.withLock { $0 = false }
        // Once armed, the Lease is lost the moment a registration is deleted.
        let reaper = reconciler(isLeader: {
            !(armed.withLock { $0 } && github.calls.contains { $0.hasPrefix("delete runner") })
        })
        let first = try await provisioned(84, reaper: reaper)
        let second = try await provisioned(85, reaper: reaper)
        github.state.withLock {
            $0.jobs[84]?.status = "completed"; $0.jobs[85]?.status = "completed"
        }
        await reaper.cycle()  // both idle from now
        #expect(!github.calls.contains { $0.hasPrefix("delete runner") })
        time.advance(by: .seconds(601))
        armed.withLock { $0 = true }
        let summary = await reaper.cycle()
        #expect(summary.result == "partial")
        #expect(github.calls.filter { $0.hasPrefix("delete runner") }.count == 1)
        #expect((github.runners[first] == nil) != (github.runners[second] == nil))  // exactly one went
        #expect(kubernetes.jobNames == ["runner-84", "runner-85"])  // no Job deleted after the loss
    }

    @Test func checksLeadershipBeforeEachChange() async throws {
        let reaper = reconciler()
        let first = try await provisioned(80, reaper: reaper)
        let second = try await provisioned(81, reaper: reaper)
        github.state.withLock {
            $0.jobs[80]?.status = "completed"; $0.jobs[81]?.status = "completed"
        }
        time.advance(by: .seconds(601))
        leading.withLock { $0 = false }  // the Lease was lost while the cycle ran
        let summary = await reaper.cycle()
        #expect(summary.result == "partial")
        #expect(github.runners[first] != nil && github.runners[second] != nil)
        #expect(!github.calls.contains { $0.hasPrefix("delete") })
        #expect(kubernetes.jobNames == ["runner-80", "runner-81"])
    }
}

@Suite struct RunnerNameTests {
    @Test(
        arguments: [
            ("runner-289782451-a1b2c", 289_782_451, nil, 1),
            ("runner-7-after-8-a1b2c", 7, 8, 1),
            ("runner-7-r2-a1b2c", 7, nil, 2),
            ("runner-7-after-8-r12-a1b2c", 7, 8, 12),
        ] as [(String, Int64, Int64?, Int)]
    )
    func readsRegistrationNames(name: String, job: Int64, after: Int64?, attempt: Int) throws {
        let parsed = try #require(RunnerName(parsing: name, as: .registration))
        #expect(parsed.jobID == job && parsed.after == after && parsed.attempt == attempt && parsed.suffix == "a1b2c")
        #expect(parsed.description == name)
        #expect(RunnerName(parsing: parsed.jobName, as: .job) == RunnerName(jobID: job, after: after, attempt: attempt))
    }

    @Test(arguments: [
        "runner-1-abcd", "runner-x-abcde", "runner-7-before-8-a1b2c", "ghost-1-abcde", "GitHub Actions 5",
        "runner-8-ABCDE", "runner-7-r1-a1b2c", "runner-7-r100-a1b2c", "runner-7-after-a1b2c", "runner-7",
    ])
    func refusesNamesItDoesNotGive(name: String) {
        #expect(RunnerName(parsing: name, as: .registration) == nil)
    }

    @Test func tellsJobNamesFromRegistrationNames() {
        #expect(RunnerName(parsing: "runner-7", as: .job) == RunnerName(jobID: 7))
        #expect(RunnerName(parsing: "runner-7-after-8-r3", as: .job) == RunnerName(jobID: 7, after: 8, attempt: 3))
        #expect(RunnerName(parsing: "runner-7-a1b2c", as: .job) == nil)
    }
}
