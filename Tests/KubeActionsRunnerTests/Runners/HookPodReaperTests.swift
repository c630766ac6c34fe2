import Testing

@testable import Kubernetes
@testable import Runners
@testable import TestSupport

/// `kubernetes` mode's reaper: the pods the container hooks start for a job's containers, once their runner is gone.
extension ReaperTests {
    /// The labels the hooks give a pod from the template extension the runner pod writes for them.
    func hookLabels(runnerJob: String, instance: String = ReaperTests.marker) -> [String: String] {
        [
            "app.kubernetes.io/managed-by": RunnerJob.hookPodManager, "app.kubernetes.io/instance": instance,
            RunnerJob.hookRunnerJobLabel: runnerJob,
        ]
    }

    func runnerPod(of job: String) throws -> String {
        try #require(kubernetes.state.withLock { $0.pods.first { $0.pod.jobName == job }?.pod.name })
    }

    var podNames: Set<String> { kubernetes.state.withLock { Set($0.pods.map(\.pod.name)) } }

    @Test func removesAHookPodOnceItsRunnerJobIsGoneAndNothingElse() async throws {
        let reaper = reconciler { $0.reapsHookPods = true }
        _ = try await provisioned(7, reaper: reaper)
        kubernetes.runJobController()
        let runner = try runnerPod(of: "runner-7")
        let orphan = kubernetes.addHookPod(runnerPod: runner, labels: hookLabels(runnerJob: "runner-7"))
        // Another deployment's, and one whose runner pod is not its runner Job's: never proven, never touched.
        let foreign = kubernetes.addHookPod(
            runnerPod: "runner-8-x1y2z",
            labels: hookLabels(runnerJob: "runner-8", instance: "kar-other")
        )
        let mislinked = kubernetes.addHookPod(runnerPod: "runner-9-x1y2z", labels: hookLabels(runnerJob: "runner-7"))

        // While the runner runs, its hook pod is at work (for longer than the orphans' 30 s, shorter than a
        // registration may stay offline before its runner counts as never connected).
        await reaper.cycle()
        time.advance(by: .seconds(300))
        await reaper.cycle()
        #expect(podNames.contains(orphan.name))

        // The runner Job goes (its TTL, or by hand); the garbage collector takes its pod, not the hook's.
        try await kubernetes.deleteJob(name: "runner-7", namespace: "github-runners")
        #expect(!podNames.contains(runner) && podNames.contains(orphan.name))
        await reaper.cycle()
        #expect(podNames.contains(orphan.name))  // first seen without its runner: kept for `secretDeadline`
        time.advance(by: .seconds(31))
        await reaper.cycle()
        #expect(!podNames.contains(orphan.name))
        #expect(podNames.isSuperset(of: [foreign.name, mislinked.name]))
        #expect(kubernetes.calls.filter { $0.hasPrefix("delete pod") } == ["delete pod \(orphan.name)"])
        #expect(reaped("orphaned_hook_pod"))
    }

    @Test func removesTheHookPodOfARunnerWhoseContainerEnded() async throws {
        let reaper = reconciler { $0.reapsHookPods = true }
        _ = try await provisioned(11, reaper: reaper)
        kubernetes.runJobController()
        let orphan = kubernetes.addHookPod(
            runnerPod: try runnerPod(of: "runner-11"),
            labels: hookLabels(runnerJob: "runner-11")
        )
        kubernetes.updatePod(of: "runner-11") { pod in
            pod.containers = [ContainerSummary(name: "runner", isTerminated: true)]
        }
        await reaper.cycle()
        time.advance(by: .seconds(31))
        await reaper.cycle()
        #expect(!podNames.contains(orphan.name))
    }

    @Test func leavesHookPodsAloneOutsideKubernetesMode() async throws {
        let reaper = reconciler()
        _ = try await provisioned(12, reaper: reaper)
        let orphan = kubernetes.addHookPod(runnerPod: "runner-12-abcde", labels: hookLabels(runnerJob: "runner-12"))
        await reaper.cycle()
        time.advance(by: .seconds(3600))
        await reaper.cycle()
        #expect(podNames.contains(orphan.name))
        #expect(!kubernetes.calls.contains { $0.hasPrefix("delete pod") })
    }
}

extension ReaperTests {
    /// A profile in `kubernetes` mode under an environment in another mode: its runners' hook pods are reaped as in
    /// `RUNNER_MODE=kubernetes`, and still after a reload removed that profile (its pods may outlive it). Before, the
    /// reaper ran only when the environment's mode was `kubernetes`, so such pods idled on forever.
    @Test func reapsTheHookPodsOfAProfileInKubernetesMode() async throws {
        let profile = RunnerProfile(name: "k8s", matcher: .selfHosted, settings: Samples.settings(.kubernetes))
        let store = RunnerProfileStore(RunnerProfiles([profile]))
        store.replace(
            with: RunnerProfiles([
                RunnerProfile(name: "plain", matcher: .selfHosted, settings: Samples.settings(.standard))
            ])
        )
        var configuration = Reconciler.Configuration()
        configuration.secretDeadline = .seconds(30)
        #expect(!configuration.reapsHookPods)
        let reaper = Reconciler.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            configuration: configuration,
            clock: time,
            profiles: store
        )
        kubernetes.addJob("runner-13", labels: ourLabels(job: 13))
        let orphan = kubernetes.addHookPod(runnerPod: "runner-13-abcde", labels: hookLabels(runnerJob: "runner-13"))
        await reaper.cycle()
        time.advance(by: .seconds(31))
        await reaper.cycle()
        #expect(!podNames.contains(orphan.name))
        #expect(reaped("orphaned_hook_pod"))
    }
}
