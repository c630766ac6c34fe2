import Foundation
import TestSupport
import Testing

@testable import Runners
@testable import Support

/// A profile's pod customizations and `podTemplatePatch`: merged over the rendered pod template with strategic-merge
/// semantics where they matter, and never able to detach the pod from its Job, its Secret or this deployment.
@Suite struct PodTemplatePatchTests {
    static func profile(
        name: String? = "p",
        mode: RunnerMode = .standard,
        pod: RunnerJob.PodCustomization = .init(),
        patch: JSONValue? = nil
    ) -> RunnerProfile {
        RunnerProfile(
            name: name,
            matcher: .selfHosted,
            settings: Samples.settings(mode),
            pod: pod,
            podTemplatePatch: patch
        )
    }

    static func pod(_ job: RunnerJob) -> JSONValue { job.job["spec"]?["template"] ?? .null }
    static func runner(_ job: RunnerJob) -> JSONValue? {
        pod(job)["spec"]?["containers"]?.elements.first { $0["name"] == "runner" }
    }

    /// The environment's profile renders exactly what the settings render (the goldens of every mode hold).
    @Test(arguments: RunnerMode.allCases)
    func theEnvironmentsProfileRendersTheSettingsJob(mode: RunnerMode) {
        let profile = Self.profile(name: nil, mode: mode)
        #expect(
            profile.render(for: Samples.request).job.rendered()
                == RunnerJob.render(for: Samples.request, settings: Samples.settings(mode)).job.rendered()
        )
    }

    @Test func mergesContainersAndVolumesByNameMapsByKeyAndReplacesOtherLists() {
        var pod = RunnerJob.PodCustomization()
        pod.nodeSelector = [("kubernetes.io/arch", "arm64")]
        pod.tolerations = [.object([("key", "a"), ("operator", "Exists")])]
        let patch: JSONValue = .object([
            (
                "spec",
                .object([
                    ("nodeSelector", .object([("zone", "a")])),
                    ("tolerations", [.object([("key", "b"), ("operator", "Exists")])]),
                    ("enableServiceLinks", .null),
                    (
                        "containers",
                        [
                            .object([
                                ("name", "runner"),
                                ("workingDir", "/home/runner"),
                                ("env", [.object([("name", "EXTRA"), ("value", "1")])]),
                            ]),
                            .object([("name", "sidecar"), ("image", "busybox")]),
                        ]
                    ),
                    ("volumes", [.object([("name", "work"), ("emptyDir", .object([("medium", "Memory")]))])]),
                ])
            )
        ])
        let job = Self.profile(pod: pod, patch: patch).render(for: Samples.request)
        let spec = Self.pod(job)["spec"] ?? .null
        #expect(spec["nodeSelector"] == .object([("kubernetes.io/arch", "arm64"), ("zone", "a")]))
        #expect(spec["tolerations"] == [.object([("key", "b"), ("operator", "Exists")])])
        #expect(spec["enableServiceLinks"] == nil)
        #expect(spec["containers"]?.elements.map { $0["name"] } == ["runner", "sidecar"])
        let runner = Self.runner(job)
        #expect(runner?["workingDir"] == "/home/runner")
        #expect(runner?["image"] == "ghcr.io/actions/actions-runner:latest")  // the rest of the runner stays
        #expect(
            runner?["env"]?.elements.compactMap { $0["name"] }
                == ["ACTIONS_RUNNER_INPUT_JITCONFIG", "GITHUB_ACTIONS_RUNNER_EXTRA_USER_AGENT", "EXTRA"]
        )
        #expect(spec["volumes"]?.elements.first?["emptyDir"]?["medium"] == "Memory")
    }

    /// The parser refuses such a patch; rendering puts the service's fields back anyway.
    @Test func theServicesOwnFieldsSurviveAHostilePatch() {
        let patch: JSONValue = .object([
            ("metadata", .object([("labels", .object([("app.kubernetes.io/instance", "other"), ("team", "x")]))])),
            (
                "spec",
                .object([
                    ("restartPolicy", "Always"),
                    (
                        "containers",
                        [
                            .object([
                                ("name", "runner"),
                                (
                                    "env",
                                    [
                                        .object([("name", "ACTIONS_RUNNER_INPUT_JITCONFIG"), ("value", "forged")])
                                    ]
                                ),
                            ])
                        ]
                    ),
                ])
            ),
        ])
        let job = Self.profile(patch: patch).render(for: Samples.request)
        let labels = Self.pod(job)["metadata"]?["labels"]
        #expect(labels?["app.kubernetes.io/instance"] == .string(Samples.ownerLabel))
        #expect(labels?["kube-actions-runner/profile"] == "p")
        #expect(labels?["team"] == "x")
        #expect(Self.pod(job)["spec"]?["restartPolicy"] == "Never")
        let jit = Self.runner(job)?["env"]?.elements.filter { $0["name"] == "ACTIONS_RUNNER_INPUT_JITCONFIG" }
        #expect(jit == [RunnerJob.jitVariable(secretName: "runner-289782451")])
        #expect(job.job["metadata"]?["labels"]?["app.kubernetes.io/instance"] == .string(Samples.ownerLabel))
    }

    /// Each customization lands where Kubernetes reads it.
    @Test func placesEachCustomization() {
        var pod = RunnerJob.PodCustomization()
        pod.runnerResources = .object([("limits", .object([("memory", "8Gi")]))])
        pod.dindResources = .object([("requests", .object([("cpu", "1")]))])
        pod.affinity = .object([("nodeAffinity", .object([]))])
        pod.topologySpreadConstraints = [.object([("maxSkew", 1)])]
        pod.annotations = [("a", "b")]
        pod.labels = [("team", "t")]
        pod.env = [.object([("name", "X"), ("value", "y")])]
        pod.volumes = [.object([("name", "cache"), ("persistentVolumeClaim", .object([("claimName", "c")]))])]
        pod.volumeMounts = [.object([("name", "cache"), ("mountPath", "/cache")])]
        pod.serviceAccountName = "sa"
        pod.imagePullSecrets = ["pull"]
        pod.runtimeClassName = "rc"
        pod.priorityClassName = "pc"
        pod.activeDeadlineSeconds = 3600
        let job = Self.profile(mode: .dind, pod: pod).render(for: Samples.request)
        let spec = Self.pod(job)["spec"] ?? .null
        #expect(job.job["spec"]?["activeDeadlineSeconds"] == 3600)
        #expect(Self.runner(job)?["resources"] == pod.runnerResources)
        #expect(spec["initContainers"]?.elements.first { $0["name"] == "dind" }?["resources"] == pod.dindResources)
        #expect(spec["affinity"] == pod.affinity && spec["topologySpreadConstraints"] == [.object([("maxSkew", 1)])])
        #expect(Self.pod(job)["metadata"]?["annotations"]?["a"] == "b")
        #expect(Self.pod(job)["metadata"]?["labels"]?["team"] == "t")
        #expect(Self.runner(job)?["env"]?.elements.last == .object([("name", "X"), ("value", "y")]))
        #expect(spec["volumes"]?.elements.last?["name"] == "cache")
        #expect(Self.runner(job)?["volumeMounts"]?.elements.last?["mountPath"] == "/cache")
        #expect(spec["serviceAccountName"] == "sa" && spec["runtimeClassName"] == "rc")
        #expect(spec["priorityClassName"] == "pc")
        #expect(spec["imagePullSecrets"] == [.object([("name", "pull")])])
        // The Secret carries the profile's label too, and nothing of the customization.
        let secret = job.secret(jitConfig: "x", jobUID: "u", runnerID: 1, runnerName: "n")
        #expect(secret["metadata"]?["labels"]?["kube-actions-runner/profile"] == "p")
    }
}
