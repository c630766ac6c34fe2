import Foundation
import Testing

@testable import App
@testable import Kubernetes
@testable import Runners
@testable import Support
@testable import TestSupport

/// Custom backends and warm pools, as a profiles file gives them.
@Suite struct ProfilesBackendTests {
    static let path = "/etc/kube-actions-runner/profiles/profiles.yaml"

    static func example() throws -> String { try Fixtures.text("profiles/backends.yaml") }

    @Test func readsBackendsAndWarmPools() throws {
        let profiles = try ProfilesFile(parsing: try Self.example()).profiles
        #expect(profiles.map(\.name) == ["vm", "kro", "linux"])
        let vm = try #require(profiles[0].backend)
        #expect(vm.resource == Samples.virtualMachineInstances)
        #expect(vm.secretData.map(\.key) == ["userdata"])
        let kro = try #require(profiles[1].backend)
        #expect(
            kro.resource
                == KubernetesResource(group: "kro.run", version: "v1alpha1", plural: "podrunners", kind: "PodRunner")
        )
        #expect(kro.secretData == CustomBackend.defaultSecretData)
        let pool = try #require(profiles[2].warmPool)
        #expect(pool.minIdle == 1 && pool.maxRunners == 20 && pool.labels == ["self-hosted", "linux", "x64"])
        #expect(pool.repositories.map(\.description) == ["octo-org/api", "octo-org/web"])

        // In force: the reconciler sees the pools and lists the backends' resources, and still lists a resource
        // whose profile a reload removed (its objects may still be there).
        let store = RunnerProfileStore(
            RunnerProfiles(profiles.map { $0.runnerProfile(base: Samples.settings(.standard)) })
        )
        #expect(store.warmPools.map(\.name) == ["linux"])
        #expect(store.customResources.map(\.plural) == ["virtualmachineinstances", "podrunners"])
        store.replace(with: RunnerProfiles([profiles[2].runnerProfile(base: Samples.settings(.standard))]))
        #expect(store.customResources.map(\.plural) == ["virtualmachineinstances", "podrunners"])
    }

    @Test func reportsEveryProblemOfABackendOrAPoolWithItsPath() {
        let text = """
            profiles:
              - name: vm
                match: self-hosted
                labels: [self-hosted]
                mode: dind
                backend:
                  resource: virtualmachineinstances
                  template:
                    apiVersion: kubevirt.io/v1
                    kind: VirtualMachineInstance
                    metadata: {name: fixed}
                    spec: {hostname: "${JIT_CONFIG}"}
                  secret:
                    userdata: "no config here"
              - name: pool
                match: self-hosted
                maxRunners: 1
                warmPool:
                  minIdle: 2
                  repositories: [octo-org, "octo/*"]
            """
        #expect {
            try ProfilesFile(parsing: text)
        } throws: { error in
            guard let problems = error as? ProfilesFile.Problems else { return false }
            return problems.problems.map { "\($0.path): \($0.message)" } == [
                "profiles[0].backend.template.metadata.name: set by the service; leave it out",
                "profiles[0].backend.template.spec.hostname: ${JIT_CONFIG} may appear in the Secret's entries only,"
                    + " never in the object",
                "profiles[0].backend.secret: no entry holds ${JIT_CONFIG}: the runner would never get its configuration",
                "profiles[0].mode: shapes a pod: a profile with a backend makes no pod; leave it out",
                "profiles[1].warmPool.repositories[0]: 'octo-org' is not owner/repo",
                "profiles[1].warmPool.repositories[1]: 'octo/*' is not owner/repo",
                "profiles[1].warmPool: a warm pool's runners register before any job: give `labels`",
                "profiles[1].warmPool.minIdle: more than maxRunners (1)",
            ]
        }
    }

    /// `render` prints the VM and its Secret: the cloud-init shown, with the JIT config redacted where it goes.
    @Test func rendersTheCustomObjectAndItsSecret() throws {
        let rendered = try App.Render.manifests(
            for: .labels(["self-hosted", "vm"], owner: "octo-org", repository: "api", jobID: 42),
            format: .yaml,
            environment: ["PROFILES_FILE": Self.path, "NAMESPACE": "github-runners-jobs"],
            files: InMemoryFiles([Self.path: try Self.example()])
        )
        // Not `render.*.yaml`: those are validated against the Kubernetes schema, which has no KubeVirt kinds.
        let golden = "golden/backend.render.vm.yaml"
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try Data(rendered.utf8).write(to: Fixtures.directory.appendingPathComponent(golden))
        }
        #expect(rendered == (try Fixtures.text(golden)))
        #expect(rendered.hasPrefix("# The runner VirtualMachineInstance for job 42 of octo-org/api"))
        #expect(rendered.contains("kind: VirtualMachineInstance"))
        #expect(rendered.contains("--jitconfig <redacted: the JIT config GitHub issues>; poweroff"))
        #expect(rendered.contains("name: runner-42\n"))
        #expect(!rendered.contains("\n  ownerReferences:"))
    }

    /// Through the composition root: a delivery for a VM profile makes the VM and its Secret, no Job.
    @Test func provisionsTheProfilesBackend() async throws {
        let github = FakeGitHubAPI()
        let kubernetes = FakeKubernetesAPI()
        let configuration = try ProfilesFileTests.configuration(try Self.example())
        let profiles = RunnerProfileStore(configuration.runnerProfiles)
        let provisioner = JITRunnerProvisioner(
            github: github,
            kubernetes: kubernetes,
            settings: configuration.runnerSettings,
            runnerGroupID: 1,
            monitor: ClusterMonitor(
                kubernetes: kubernetes,
                namespace: "ns",
                metrics: .init(),
                logger: .init(label: "t")
            ),
            logger: .init(label: "t"),
            profiles: profiles
        )
        github.queue(job: 5, labels: ["self-hosted", "vm"])
        let request = RunnerRequest(
            owner: "octo-org",
            repository: "api",
            jobID: 5,
            runID: 1,
            jobName: "build",
            labels: ["self-hosted", "vm"],
            deliveryID: "d"
        )
        #expect(try await provisioner.provision(request) == .created(runnerJob: "runner-5"))
        #expect(kubernetes.jobNames.isEmpty)
        #expect(
            kubernetes.state.withLock { $0.objects[Samples.virtualMachineInstances]?.keys.sorted() } == ["runner-5"]
        )
        let secret = try #require(kubernetes.state.withLock { $0.secrets["runner-5"] })
        guard case .string(let userdata)? = secret["stringData"]?["userdata"] else {
            Issue.record("no userdata")
            return
        }
        #expect(userdata.contains("--jitconfig jit-100; poweroff"))
        #expect(
            github.state.withLock { $0.runnerLabels[100] } == [
                "self-hosted", "linux", "x64", "vm", "kar-github-runners-jobs",
            ]
        )
    }
}
