import Synchronization
import Testing

@testable import GitHub
@testable import Kubernetes
@testable import Observability
@testable import Runners
@testable import TestSupport

/// `RUNNER_SCOPE=org`: an organization's registrations are listed once a cycle and shared by its repositories;
/// the reapers look at and delete registrations at the organization.
@Suite struct OrganizationScopeTests {
    let github = FakeGitHubAPI()
    let kubernetes = FakeKubernetesAPI()
    let metrics = Metrics()
    let logs = LogCapture()
    let time = ManualClock()

    func reconciler(_ repositories: [String]) -> Reconciler {
        Reconciler.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            repositories: repositories.map {
                let parts = $0.split(separator: "/")
                return RepositoryRegistry.Repository(owner: String(parts[0]), name: String(parts[1]))
            },
            clock: time,
            scope: .organization
        )
    }

    var exposition: String { String(decoding: metrics.exposition(), as: UTF8.self) }

    @Test func listsAnOrganizationsRegistrationsOnceACycleAndProvisionsAtTheOrganization() async throws {
        github.queue(job: 1, run: 10, repository: "octo/b")
        let reconciler = reconciler(["octo/a", "octo/b", "octo/c", "other/d"])
        let summary = await reconciler.cycle()
        #expect(summary.repositories == 4 && summary.recovered == 1)
        #expect(github.calls.filter { $0.hasPrefix("runners") } == ["runners org octo", "runners org other"])
        #expect(github.calls.contains { $0.hasPrefix("jit org octo runner-1-") })
        #expect(kubernetes.jobNames == ["runner-1"])
    }

    @Test func reapsAnIdleOrganizationRunnerAtTheOrganization() async throws {
        github.queue(job: 1, run: 10, repository: "octo/b")
        let reconciler = reconciler(["octo/a", "octo/b"])
        await reconciler.cycle()
        let id = try #require(github.state.withLock { $0.runnerOrganization.first { $0.value == "octo" }?.key })
        github.state.withLock { $0.jobs[1]?.status = "completed" }  // cancelled: nothing for its runner to do
        await reconciler.cycle()
        time.advance(by: .seconds(601))
        await reconciler.cycle()
        #expect(github.runners[id] == nil && kubernetes.jobNames.isEmpty)
        #expect(github.calls.contains("delete org runner \(id)"))
        #expect(exposition.contains(#"runners_reaped_total{reason="idle"} 1"#))
    }

    @Test func keepsAnOrganizationRunnerAQueuedJobOfItsRepositoryNeeds() async throws {
        github.queue(job: 1, run: 10, repository: "octo/b")
        let reconciler = reconciler(["octo/a", "octo/b"])
        await reconciler.cycle()
        for _ in 0..<3 {
            time.advance(by: .seconds(601))
            await reconciler.cycle()
        }
        // Its job still waits: octo/a, which has no job, does not make it surplus.
        #expect(github.runners.count == 1 && kubernetes.jobNames == ["runner-1"])
        #expect(!github.calls.contains { $0.hasPrefix("delete") })
    }

    @Test func deletesAnOrphanedOrganizationRegistrationAtTheOrganization() async throws {
        let id = github.register("runner-7-abcde", labels: ["self-hosted", Samples.ownerLabel])
        github.state.withLock { $0.runnerOrganization[id] = "octo" }
        let reconciler = reconciler(["octo/a", "octo/b"])
        await reconciler.cycle()
        time.advance(by: .seconds(31))
        await reconciler.cycle()
        #expect(github.runners[id] == nil)
        #expect(github.calls.filter { $0.hasPrefix("delete") } == ["delete org runner \(id)"])
        #expect(exposition.contains(#"runners_reaped_total{reason="orphan_registration"} 1"#))
    }
}

extension OrganizationScopeTests {
    /// A cycle that visited only octo/a sees octo/b's runner in the organization's list: it waits for octo/b's
    /// visit (in octo/a's plan it would look surplus while its job may wait); a runner with no Job is seen in the
    /// organization's first visited repository.
    @Test func aRunnerOfARepositoryNotVisitedThisCycleWaitsForThatVisit() {
        let a = RepositoryRegistry.Repository(owner: "octo", name: "a")
        var world = Reconciler.World()
        world.known = [a, .init(owner: "octo", name: "b")]
        world.repositories = [a]
        world.jobs = [
            JobSummary(
                name: "runner-1",
                labels: [RunnerJob.ownerNameLabel: "octo", RunnerJob.repositoryNameLabel: "b"],
                isFinished: false
            )
        ]
        let ofB = RegisteredRunner(id: 100, name: "runner-1-abcde", labels: [Samples.ownerLabel])
        let orphan = RegisteredRunner(id: 101, name: "runner-2-abcde", labels: [Samples.ownerLabel])
        reconciler(["octo/a"]).assignOrganizationRunners(["octo": [ofB, orphan]], in: &world)
        #expect(world.registrations == [a: [orphan]])
    }
}
