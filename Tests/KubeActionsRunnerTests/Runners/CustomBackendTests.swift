import Foundation
import Testing

@testable import GitHub
@testable import Kubernetes
@testable import Observability
@testable import Runners
@testable import Support
@testable import TestSupport

/// Runners made of another resource's objects than Jobs: the template, the Secret the object owns, provisioning and
/// the reapers, which must know these objects as they know Jobs.
@Suite struct CustomBackendTests {
    let github = FakeGitHubAPI()
    let kubernetes = FakeKubernetesAPI()
    let metrics = Metrics()
    let logs = LogCapture()
    let time = ManualClock()

    /// A queued job of octo/repo asking for `labels`.
    func request(_ job: Int64, labels: [String] = ["self-hosted"]) -> RunnerRequest {
        RunnerRequest(
            owner: "octo",
            repository: "repo",
            jobID: job,
            runID: 1,
            jobName: "build",
            labels: labels,
            deliveryID: "d-\(job)"
        )
    }

    /// A provisioner choosing among `profiles`.
    func provisioner(settings: RunnerJob.Settings, profiles: RunnerProfileStore) -> JITRunnerProvisioner {
        JITRunnerProvisioner(
            github: github,
            kubernetes: kubernetes,
            settings: settings,
            runnerGroupID: 1,
            monitor: ClusterMonitor(kubernetes: kubernetes, namespace: "ns", metrics: metrics, logger: logs.logger()),
            clock: ImmediateClock(),
            logger: logs.logger(),
            profiles: profiles
        )
    }

    func settings() throws -> RunnerJob.Settings {
        var settings = Samples.settings(.standard)
        settings.backend = try Samples.kubeVirtBackend()
        return settings
    }

    /// The reviewed rendering of a KubeVirt VM runner; `UPDATE_GOLDEN=1` rewrites it (then review the diff).
    @Test func rendersTheTemplateWithTheServicesMetadataAndNoJITConfig() throws {
        let runner = RunnerJob.render(for: Samples.request, settings: try settings())
        let rendered = runner.job.rendered(pretty: true) + "\n"
        let path = "golden/custom.kubevirt.json"
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try Data(rendered.utf8).write(to: Fixtures.directory.appendingPathComponent(path))
        }
        #expect(rendered == (try Fixtures.text(path)))
        let object = runner.job
        #expect(object["metadata"]?["name"] == "runner-289782451")
        #expect(object["metadata"]?["namespace"] == "github-runners")
        // The template's own label stays; the service's are added.
        #expect(object["metadata"]?["labels"]?["kubevirt.io/os"] == "linux")
        #expect(object["metadata"]?["labels"]?["app.kubernetes.io/instance"] == "kar-github-runners")
        #expect(object["metadata"]?["labels"]?["kube-actions-runner/job-id"] == "289782451")
        #expect(object["metadata"]?["labels"]?["kube-actions-runner/mode"] == "custom")
        #expect(runner.resource == Samples.virtualMachineInstances)

        let secret = runner.secret(jitConfig: "ENCODED-JIT", jobUID: "vmi-uid", runnerID: 5, runnerName: "r")
        #expect(!object.rendered().contains("ENCODED-JIT"))
        #expect(
            secret["metadata"]?["ownerReferences"] == [
                [
                    "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "name": "runner-289782451",
                    "uid": "vmi-uid", "controller": true,
                ]
            ]
        )
        guard case .string(let userdata)? = secret["stringData"]?["userdata"] else {
            Issue.record("no userdata")
            return
        }
        #expect(userdata.contains("--jitconfig ENCODED-JIT; poweroff"))
        #expect(secret["stringData"]?["jitconfig"] == nil)
    }

    @Test func refusesATemplateThatWouldLeakTheJITConfigOrNameItself() {
        let template: JSONValue = [
            "apiVersion": "kubevirt.io/v1alpha3",
            "kind": "VirtualMachine",
            "metadata": ["name": "fixed", "annotations": ["jit": "${JIT_CONFIG}"]],
            "spec": ["hostname": "${RUNNER_HOST}"],
        ]
        #expect {
            try CustomBackend(
                resource: Samples.virtualMachineInstances,
                template: template,
                secretData: [CustomBackend.SecretEntry(key: "bad key", text: "${NOPE}")]
            )
        } throws: { error in
            guard let invalid = error as? CustomBackend.Invalid else { return false }
            return invalid.problems == [
                "template.apiVersion: must be kubevirt.io/v1, the resource's",
                "template.kind: must be VirtualMachineInstance, the resource's",
                "template.metadata.name: set by the service; leave it out",
                "template.metadata.annotations.jit: ${JIT_CONFIG} may appear in the Secret's entries only, never in"
                    + " the object",
                "template.spec.hostname: unknown placeholder ${RUNNER_HOST}",
                "secret[0].key: 'bad key' is not a valid Secret key",
                "secret[0].text: unknown placeholder ${NOPE}",
                "secret: no entry holds ${JIT_CONFIG}: the runner would never get its configuration",
            ]
        }
    }

    @Test func provisionsTheObjectThenRegistersThenStoresTheSecretItOwns() async throws {
        let provisioner = JITRunnerProvisioner.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            settings: try settings()
        )
        github.queue(job: 7)
        let request = request(7)
        #expect(try await provisioner.provision(request) == .created(runnerJob: "runner-7"))
        #expect(kubernetes.jobNames.isEmpty)
        let object = try #require(
            kubernetes.state.withLock { $0.objects[Samples.virtualMachineInstances]?["runner-7"] }
        )
        let secret = try #require(kubernetes.state.withLock { $0.secrets["runner-7"] })
        #expect(
            secret["metadata"]?["ownerReferences"] == [
                [
                    "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "name": "runner-7",
                    "uid": .string(object.uid), "controller": true,
                ]
            ]
        )
        #expect(kubernetes.calls.prefix(2) == ["create virtualmachineinstances runner-7", "create secret runner-7"])
        // A second delivery finds the object: nothing registered twice.
        #expect(try await provisioner.provision(request) == .alreadyProvisioned(runnerJob: "runner-7"))
        #expect(github.runners.count == 1)
    }

    @Test func aFailedProvisioningRemovesTheObjectItMade() async throws {
        let provisioner = JITRunnerProvisioner.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            settings: try settings()
        )
        github.queue(job: 8)
        kubernetes.state.withLock {
            $0.createSecretFaults = [FakeKubernetesAPI.error(.forbidden, status: 403, resource: "secrets")]
        }
        let request = request(8)
        await #expect(throws: ProvisioningError.self) { try await provisioner.provision(request) }
        #expect(kubernetes.state.withLock { $0.objects[Samples.virtualMachineInstances]?.isEmpty ?? true })
        #expect(kubernetes.calls.contains("delete virtualmachineinstances runner-8"))
        #expect(github.runners.isEmpty)
    }

    func reconciler() throws -> Reconciler {
        var configuration = Reconciler.Configuration()
        configuration.customResources = [Samples.virtualMachineInstances]
        let provisioner = JITRunnerProvisioner.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            settings: try settings()
        )
        return Reconciler.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            configuration: configuration,
            clock: time,
            provisioner: provisioner
        )
    }

    var objectNames: Set<String> {
        kubernetes.state.withLock { Set(($0.objects[Samples.virtualMachineInstances] ?? [:]).keys) }
    }

    /// No TTL removes a VM: once its runner's registration is gone (the job is done), the reconciler does, and only
    /// then; the runner at work keeps its VM.
    @Test func removesTheObjectOfAFinishedRunnerAndKeepsTheOneAtWork() async throws {
        let reaper = try reconciler()
        github.queue(job: 21, run: 210)
        github.queue(job: 22, run: 220)
        await reaper.cycle()
        #expect(objectNames == ["runner-21", "runner-22"])
        let ids = github.state.withLock { state in
            Dictionary(
                uniqueKeysWithValues: state.runners.compactMap { id, name in
                    RunnerName(parsing: name, as: .registration).map { ($0.jobID, id) }
                }
            )
        }
        // Both take their jobs; 21's finishes and GitHub removes its ephemeral registration.
        github.start(runner: try #require(ids[21]), on: 21)
        github.start(runner: try #require(ids[22]), on: 22)
        github.complete(job: 21, runner: try #require(ids[21]))
        await reaper.cycle()
        #expect(objectNames == ["runner-21", "runner-22"])  // first seen without it: kept for 30 s
        time.advance(by: .seconds(31))
        await reaper.cycle()
        #expect(objectNames == ["runner-22"])
        #expect(kubernetes.secretNames == ["runner-22"])  // the Secret went with its owner
        time.advance(by: .seconds(3600))
        await reaper.cycle()
        #expect(objectNames == ["runner-22"])
    }

    @Test func removesARunnerThatNeverConnectedRegistrationFirst() async throws {
        let reaper = try reconciler()
        github.queue(job: 31, run: 310)
        await reaper.cycle()
        #expect(objectNames == ["runner-31"])
        let id = try #require(github.runners.keys.first)
        time.advance(by: .seconds(60))
        await reaper.cycle()  // first seen offline
        time.advance(by: .seconds(599))
        await reaper.cycle()
        #expect(objectNames == ["runner-31"] && github.runners[id] != nil)
        time.advance(by: .seconds(2))
        await reaper.cycle()
        #expect(!objectNames.contains("runner-31") && github.runners[id] == nil)
        #expect(exposition.contains(#"runners_reaped_total{reason="never_connected"} 1"#))
    }

    var exposition: String { String(decoding: metrics.exposition(), as: UTF8.self) }
}

extension CustomBackendTests {
    /// A profile with a backend and `maxRunners`: its objects carry the profile's label, as its Jobs would, and the
    /// cap counts them (they are no Jobs, so a count of Jobs alone never sees them and the cap would hold nothing).
    @Test func aCappedBackendProfileCountsItsObjects() async throws {
        var settings = try settings()
        settings.mode = .standard
        let profiles = RunnerProfileStore(
            RunnerProfiles([
                RunnerProfile(name: "vm", matcher: .selfHosted, settings: settings, maxRunners: 1)
            ])
        )
        let provisioner = self.provisioner(settings: settings, profiles: profiles)
        github.queue(job: 1)
        github.queue(job: 2)
        #expect(try await provisioner.provision(request(1)) == .created(runnerJob: "runner-1"))
        let labels = kubernetes.state.withLock { $0.objects[Samples.virtualMachineInstances]?["runner-1"]?.labels }
        #expect(labels?["kube-actions-runner/profile"] == "vm")
        #expect(
            try await provisioner.provision(request(2)) == .deferred(reason: "profile vm: 1 of maxRunners 1 active")
        )
        #expect(kubernetes.state.withLock { $0.objects[Samples.virtualMachineInstances]?.count } == 1)
        #expect(github.runners.count == 1)
    }
}

extension CustomBackendTests {
    /// A backend's resource the API server does not serve (its CRD not installed, a plural misspelt in the profiles
    /// file, or kept listed after a reload removed its profile): no object of it can exist, so its 404 stops no
    /// cycle. Before, every cycle failed at that list, and nothing was recovered or reaped until a restart, since a
    /// reload keeps listing the resource.
    @Test func aResourceTheAPIServerDoesNotServeStopsNoCycle() async throws {
        var configuration = Reconciler.Configuration()
        configuration.customResources = [Samples.virtualMachineInstances]
        kubernetes.state.withLock { $0.unservedResources = [Samples.virtualMachineInstances] }
        let reaper = Reconciler.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            configuration: configuration,
            clock: time
        )
        github.queue(job: 31, run: 310)
        let summary = await reaper.cycle()
        #expect(summary.result == "ok")
        #expect(kubernetes.jobNames == ["runner-31"])
        #expect(kubernetes.calls.contains("list virtualmachineinstances"))
    }

    /// Any other failure to list them (a Role without `list`, an API server that does not answer) still fails the
    /// cycle: objects may exist that it could not see.
    @Test func aResourceThatCannotBeListedStillFailsTheCycle() async throws {
        var configuration = Reconciler.Configuration()
        configuration.customResources = [Samples.virtualMachineInstances]
        let reaper = Reconciler.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            configuration: configuration,
            clock: time
        )
        github.queue(job: 32, run: 320)
        kubernetes.state.withLock {
            $0.listObjectsFaults = [
                FakeKubernetesAPI.error(.forbidden, status: 403, verb: "list", resource: "virtualmachineinstances")
            ]
        }
        let summary = await reaper.cycle()
        #expect(summary.result == "failed")
        #expect(kubernetes.jobNames.isEmpty)
    }
}

extension CustomBackendTests {
    static func kroBackend() throws -> CustomBackend {
        try CustomBackend(
            resource: KubernetesResource(
                group: "kro.run",
                version: "v1alpha1",
                plural: "podrunners",
                kind: "PodRunner"
            ),
            template: [
                "apiVersion": "kro.run/v1alpha1",
                "kind": "PodRunner",
                "spec": ["runnerName": "${RUNNER_NAME}", "labels": "${RUNNER_LABELS}"],
            ]
        )
    }

    /// `${RUNNER_LABELS}` is what README and the placeholder's documentation say: the labels the runner registers
    /// with (the profile's, and this deployment's marker), not the job's `runs-on`. Before, it was the job's labels,
    /// and for a replacement asked for by an `in_progress` delivery, whose labels are read from GitHub after the
    /// request was made, it was empty.
    @Test func runnerLabelsAreTheLabelsTheRunnerRegistersWith() async throws {
        var settings = Samples.settings(.standard)
        settings.backend = try Self.kroBackend()
        let profile = RunnerProfile(
            name: "kro",
            matcher: .selfHosted,
            runnerLabels: ["self-hosted", "linux", "kro"],
            settings: settings
        )
        let expected = "self-hosted,linux,kro,\(Samples.ownerLabel)"
        var sample = Samples.request
        sample.labels = ["self-hosted", "kro"]
        #expect(profile.render(for: sample).job["spec"]?["labels"] == .string(expected))

        // Through the provisioner, for a replacement whose job's labels come from GitHub.
        let provisioner = self.provisioner(settings: settings, profiles: RunnerProfileStore(RunnerProfiles([profile])))
        github.queue(job: 41, labels: ["self-hosted", "kro"])
        var replacement = self.request(41, labels: [])
        replacement.replacing = 40
        let outcome = try await provisioner.provision(replacement)
        guard case .created(let name) = outcome else {
            Issue.record("not created: \(outcome)")
            return
        }
        let resource = try Self.kroBackend().resource
        let object = try #require(kubernetes.state.withLock { $0.objects[resource]?[name] })
        #expect(object.manifest["spec"]?["labels"] == .string(expected))
        let registered = github.state.withLock { Array($0.runnerLabels.values) }
        #expect(registered == [["self-hosted", "linux", "kro", Samples.ownerLabel]])
    }
}
