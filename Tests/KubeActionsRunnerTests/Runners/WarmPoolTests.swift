import Testing

@testable import GitHub
@testable import Kubernetes
@testable import Observability
@testable import Runners
@testable import TestSupport

/// Warm pools: idle runners registered ahead of jobs, topped up to `minIdle`, under the profile's cap, kept by the
/// idle reaper, and replaced once one takes a job.
@Suite struct WarmPoolTests {
    let github = FakeGitHubAPI()
    let kubernetes = FakeKubernetesAPI()
    let metrics = Metrics()
    let logs = LogCapture()
    let time = ManualClock()
    static let repository = RepositoryRegistry.Repository(owner: "octo", name: "repo")

    func reconciler(minIdle: Int, maxRunners: Int? = nil) -> Reconciler {
        var configuration = Reconciler.Configuration()
        configuration.warmPools = [
            WarmPool(
                name: "linux",
                minIdle: minIdle,
                labels: ["self-hosted", "linux"],
                repositories: [Self.repository],
                maxRunners: maxRunners
            )
        ]
        configuration.idleTimeout = .seconds(600)
        return Reconciler.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            configuration: configuration,
            clock: time
        )
    }

    var warmJobs: [String] { kubernetes.jobNames.filter { $0.hasPrefix("runner-warm-") }.sorted() }

    /// Registration ids by name.
    var registrations: [String: Int64] {
        github.state.withLock { Dictionary(uniqueKeysWithValues: $0.runners.map { ($0.value, $0.key) }) }
    }

    @Test func namesAWarmRunnerApartFromAJobsRunner() throws {
        let job = try #require(RunnerName(parsing: "runner-warm-k3x9q", as: .job))
        #expect(job.isWarm && job.jobName == "runner-warm-k3x9q" && job.jobID == 0)
        let registration = try #require(RunnerName(parsing: "runner-warm-k3x9q-a1b2c", as: .registration))
        #expect(registration.isWarm && registration.jobName == "runner-warm-k3x9q" && registration.suffix == "a1b2c")
        #expect(RunnerName(parsing: "runner-warm-k3x9", as: .job) == nil)
        #expect(RunnerName(parsing: "runner-warm-k3x9q", as: .registration) == nil)
        #expect(RunnerName(parsing: "runner-warm-k3x9q-a1b2c-zzzzz", as: .registration) == nil)
        #expect(RunnerName(parsing: "runner-warm-K3X9Q", as: .job) == nil)
        #expect(RunnerName(parsing: "runner-42-a1b2c", as: .registration)?.isWarm == false)
    }

    @Test func keepsMinIdleRunnersRegisteredWithThePoolsLabels() async throws {
        let reaper = reconciler(minIdle: 2)
        await reaper.cycle()
        #expect(warmJobs.count == 2)
        for name in warmJobs {
            let labels = try #require(kubernetes.state.withLock { $0.jobs[name]?.labels })
            #expect(labels["kube-actions-runner/pool"] == "linux")
            #expect(labels["kube-actions-runner/job-id"] == nil)
            #expect(labels["kube-actions-runner/repo"] == "repo")
            #expect(kubernetes.secretNames.contains(name))
        }
        let labels = github.state.withLock { Array($0.runnerLabels.values) }
        #expect(labels.count == 2 && labels.allSatisfy { $0 == ["self-hosted", "linux", Samples.ownerLabel] })
        // Kept: idle longer than the idle timeout, they are what the pool is for.
        await reaper.cycle()
        time.advance(by: .seconds(3600))
        await reaper.cycle()
        #expect(warmJobs.count == 2 && github.runners.count == 2)
    }

    @Test func replacesAWarmRunnerThatTookAJob() async throws {
        let reaper = reconciler(minIdle: 1)
        await reaper.cycle()
        let first = try #require(warmJobs.first)
        let id = try #require(registrations.first { $0.key.hasPrefix(first + "-") }?.value)
        github.queue(job: 9, run: 90, labels: ["self-hosted", "linux"])
        github.start(runner: id, on: 9)
        await reaper.cycle()
        #expect(warmJobs.count == 2)  // the busy one, and a new idle one
    }

    @Test func neverGoesPastTheProfilesCap() async throws {
        let reaper = reconciler(minIdle: 3, maxRunners: 2)
        await reaper.cycle()
        await reaper.cycle()
        #expect(warmJobs.count == 2)
    }

    @Test func theIdleReaperRemovesWhatThePoolNoLongerNeeds() async throws {
        await reconciler(minIdle: 2).cycle()
        #expect(warmJobs.count == 2)
        let smaller = reconciler(minIdle: 1)
        await smaller.cycle()
        time.advance(by: .seconds(601))
        await smaller.cycle()
        #expect(warmJobs.count == 1 && github.runners.count == 1)
        #expect(
            String(decoding: metrics.exposition(), as: UTF8.self).contains(#"runners_reaped_total{reason="idle"} 1"#)
        )
    }
}

extension WarmPoolTests {
    /// A warm runner whose pod cannot run is reaped like any other, and then its pool waits `failureHoldOff` in that
    /// repository before it registers another, as a job does after its runner could not run: a broken pool (an image
    /// that cannot start, a pod Pod Security refuses) must not make and delete a registration every cycle.
    @Test func aPoolWhoseRunnerCannotRunWaitsBeforeMakingAnother() async throws {
        let reaper = reconciler(minIdle: 1)
        await reaper.cycle()
        let first = try #require(warmJobs.first)
        kubernetes.runJobController()
        kubernetes.updatePod(of: first) { pod in
            pod.containers = [ContainerSummary(name: "runner", waitingReason: "CrashLoopBackOff")]
        }
        await reaper.cycle()
        #expect(!kubernetes.jobNames.contains(first))
        #expect(
            String(decoding: metrics.exposition(), as: UTF8.self).contains(
                #"runners_reaped_total{reason="crash_loop"} 1"#
            )
        )
        #expect(warmJobs.isEmpty)
        for _ in 0..<5 {
            time.advance(by: .seconds(60))
            await reaper.cycle()
        }
        #expect(warmJobs.isEmpty)
        #expect(github.state.withLock { $0.calls.filter { $0.hasPrefix("jit ") }.count } == 1)
        time.advance(by: .seconds(900))
        await reaper.cycle()
        #expect(warmJobs.count == 1)
    }
}

extension WarmPoolTests {
    /// A pool's repositories are visited whether or not a job of theirs was ever delivered (nor listed in
    /// `REPOSITORIES`): a pool is for the first job of a repository too. Before, the reconciler visited only the
    /// repositories it knew, so a pool never filled in a repository that had no delivery yet, and stopped being
    /// topped up in one forgotten after 30 days without a job.
    @Test func fillsAPoolInARepositoryNoDeliveryMadeKnown() async throws {
        let elsewhere = RepositoryRegistry.Repository(owner: "octo", name: "api")
        var configuration = Reconciler.Configuration()
        configuration.warmPools = [
            WarmPool(name: "linux", minIdle: 1, labels: ["self-hosted", "linux"], repositories: [elsewhere])
        ]
        let reaper = Reconciler.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            configuration: configuration,
            clock: time
        )
        await reaper.cycle()
        #expect(warmJobs.count == 1)
        let labels = try #require(
            warmJobs.first.flatMap { name in kubernetes.state.withLock { $0.jobs[name]?.labels } }
        )
        #expect(labels["kube-actions-runner/repo"] == "api")
    }
}

extension WarmPoolTests {
    /// A reload that removes a pool's profile leaves its warm runners to the idle reaper: kept by nothing, they go
    /// after `RUNNER_IDLE_TIMEOUT`, registration first.
    @Test func theRunnersOfAPoolAReloadRemovedAreReapedAsIdle() async throws {
        let pool = WarmPool(
            name: "linux",
            minIdle: 2,
            labels: ["self-hosted", "linux"],
            repositories: [Self.repository]
        )
        let settings = Samples.settings(.standard)
        let store = RunnerProfileStore(
            RunnerProfiles([RunnerProfile(name: "linux", matcher: .selfHosted, settings: settings, warmPool: pool)])
        )
        var configuration = Reconciler.Configuration()
        configuration.idleTimeout = .seconds(600)
        let reaper = Reconciler.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            configuration: configuration,
            clock: time,
            profiles: store
        )
        await reaper.cycle()
        #expect(warmJobs.count == 2 && github.runners.count == 2)
        store.replace(with: RunnerProfiles([RunnerProfile(name: "linux", matcher: .selfHosted, settings: settings)]))
        await reaper.cycle()
        time.advance(by: .seconds(601))
        await reaper.cycle()
        #expect(warmJobs.isEmpty && github.runners.isEmpty)
    }
}
