import Foundation
import Testing

@testable import App
@testable import Observability
@testable import Runners
@testable import Support
@testable import TestSupport

@Suite struct ProfilesFileTests {
    static let path = "/etc/kube-actions-runner/profiles/profiles.yaml"

    static func example() throws -> String {
        try Fixtures.text("profiles/profiles.yaml")
    }

    static func configuration(
        _ text: String,
        environment: [String: String] = [:]
    ) throws(ConfigurationErrors) -> Configuration {
        var environment = environment
        environment["DRY_RUN"] = "true"
        environment["WEBHOOK_SECRET"] = "a-webhook-secret-of-some-length"
        environment["NAMESPACE"] = "github-runners-jobs"
        environment["PROFILES_FILE"] = path
        return try Configuration(environment: environment, files: InMemoryFiles([path: text]))
    }

    @Test func readsEveryFieldOfTheExample() throws {
        let profiles = try ProfilesFile(parsing: try Self.example()).profiles
        #expect(profiles.map(\.name) == ["arm64", "docker", "gpu", "default"])
        let arm64 = profiles[0]
        #expect(arm64.matcher.description == "self-hosted+arm64")
        #expect(arm64.labels == ["self-hosted", "linux", "arm64"])
        #expect(arm64.pod.nodeSelector.map { "\($0.0)=\($0.1)" } == ["kubernetes.io/arch=arm64"])
        #expect(arm64.pod.tolerations.first?["effect"] == "NoSchedule")
        #expect(arm64.maxRunners == 10)
        let docker = profiles[1]
        #expect(docker.mode == .dind)
        #expect(docker.dindImage == "docker:28-dind")
        #expect(docker.pod.volumes.first?["persistentVolumeClaim"]?["claimName"] == "runner-tool-cache")
        #expect(docker.pod.dindResources?["limits"]?["memory"] == "8Gi")
        #expect(docker.pod.activeDeadlineSeconds == 21600)
        #expect(docker.pod.priorityClassName == "ci-runners")
        let gpu = profiles[2]
        #expect(gpu.pod.runtimeClassName == "nvidia" && gpu.pod.imagePullSecrets == ["registry-credentials"])
        #expect(gpu.podTemplatePatch?["spec"]?["terminationGracePeriodSeconds"] == 120)
        #expect(profiles[3].mode == nil && profiles[3].pod.isEmpty)
    }

    /// First match wins; a profile with `labels` takes only jobs whose every label it carries.
    @Test(
        arguments: [
            (["self-hosted", "arm64"], "arm64"),
            (["self-hosted", "linux", "ARM64"], "arm64"),
            // arm64 does not carry docker, docker not arm64, default neither.
            (["self-hosted", "arm64", "docker"], nil),
            (["self-hosted", "docker"], "docker"),
            (["self-hosted", "linux", "x64", "docker"], "docker"),
            (["self-hosted", "linux"], "default"),
            (["self-hosted"], "default"),
            (["self-hosted", "gpu"], "gpu"),
            (["self-hosted", "linux", "gpu", "arm64"], nil),
            (["self-hosted", "tpu"], nil),  // no profile's runners carry tpu: not a plain pod claiming it
            (["ubuntu-latest"], nil),
            ([], nil),
        ] as [([String], String?)]
    )
    func choosesTheFirstProfileThatTakesTheLabels(labels: [String], expected: String?) throws {
        let profiles = try Self.configuration(try Self.example()).runnerProfiles
        #expect(profiles.profile(for: labels)?.name == expected)
        #expect(profiles.matches(labels) == (expected != nil))
    }

    @Test func withoutAFileTheEnvironmentIsOneProfileThatRegistersTheJobsLabels() throws {
        let configuration = try Configuration(
            environment: [
                "DRY_RUN": "true", "WEBHOOK_SECRET": "a-webhook-secret-of-some-length", "LABEL_MATCHERS": "gpu",
            ],
            files: InMemoryFiles()
        )
        let profiles = configuration.runnerProfiles
        #expect(profiles.profiles.count == 1)
        let profile = try #require(profiles.profile(for: ["self-hosted", "gpu"]))
        #expect(profile.name == nil)
        #expect(
            profile.registrationLabels(for: ["self-hosted", "gpu"]) == ["self-hosted", "gpu", configuration.ownerLabel]
        )
        #expect(profiles.profile(for: ["self-hosted"]) == nil)
    }

    @Test func aProfileRegistersItsOwnLabelsAndTheOwnerMarker() throws {
        let configuration = try Self.configuration(try Self.example())
        let arm64 = try #require(configuration.runnerProfiles.profile(for: ["self-hosted", "arm64"]))
        #expect(
            arm64.registrationLabels(for: ["self-hosted", "arm64"]) == [
                "self-hosted", "linux", "arm64", "kar-github-runners-jobs",
            ]
        )
        #expect(arm64.settings.runnerImage == configuration.runnerImage)
        #expect(arm64.settings.mode == configuration.runnerMode)
    }

    /// Every problem at once, each with its path and line.
    @Test func reportsEveryProblemWithItsPath() {
        let text = """
            profiles:
              - name: fine
                match: self-hosted
              - name: Bad Name
                match: "a,b+c"
                mode: vm
                labels: []
                colour: blue
              - name: fine
                match: x
                tolerations:
                  - key: gpu
                    effect: NoScheduleAtAll
                  - operator: Equal
                    tolerationSeconds: 5
                resources:
                  runner:
                    limits: {cpu: lots}
                env:
                  - name: ACTIONS_RUNNER_INPUT_JITCONFIG
                    value: stolen
                  - name: ONE
                podLabels:
                  app.kubernetes.io/instance: other
                volumes:
                  - name: work
                    emptyDir: {}
                volumeMounts:
                  - name: cache
                    mountPath: relative
                maxRunners: 0
                activeDeadlineSeconds: 1.5
                podTemplatePatch:
                  spec:
                    containers:
                      - image: x
            """
        var problems: [String] = []
        do {
            _ = try ProfilesFile(parsing: text)
            Issue.record("expected problems")
        } catch {
            problems = error.problems.map(\.description)
        }
        #expect(
            problems == [
                "profiles[1].colour: unknown key; known: name, match, labels, mode, runnerImage, dindImage, resources,"
                    + " nodeSelector, tolerations, affinity, topologySpreadConstraints, podAnnotations, podLabels, env,"
                    + " volumes, volumeMounts, serviceAccountName, imagePullSecrets, runtimeClassName,"
                    + " priorityClassName, activeDeadlineSeconds, maxRunners, podTemplatePatch, backend, warmPool (line 8)",
                "profiles[1].name: 'Bad Name' is not a label value (at most 63 of A-Z a-z 0-9 . _ -, starting and"
                    + " ending alphanumeric) (line 4)",
                "profiles[1].match: matcher 1 'a,b+c' mixes ',' (any of) and '+' (all of); split it into two"
                    + " matchers with ';' (line 5)",
                "profiles[1].labels: list 1 to 99 labels (GitHub takes 100 with the owner label) (line 7)",
                "profiles[1].mode: 'vm' is not a mode: one of standard, userns, dind, dind-rootless, kubernetes (line 6)",
                "profiles[2].resources.runner.limits.cpu: not a quantity (such as 500m, 2, 4Gi) (line 18)",
                "profiles[2].tolerations[0].effect: must be one of NoSchedule, PreferNoSchedule, NoExecute (line 13)",
                "profiles[2].tolerations[1].key: missing: an empty key needs operator Exists (line 14)",
                "profiles[2].tolerations[1].tolerationSeconds: only with effect NoExecute (line 15)",
                "profiles[2].podLabels.app.kubernetes.io/instance: the service sets this label (line 24)",
                "profiles[2].env[0].name: ACTIONS_RUNNER_INPUT_JITCONFIG is set by the service (line 20)",
                "profiles[2].env[1]: needs value or valueFrom (line 22)",
                "profiles[2].volumes[0].name: the service's pods have a volume 'work'; take another name (line 26)",
                "profiles[2].volumeMounts[0].name: 'cache' is not one of the profile's volumes (line 29)",
                "profiles[2].volumeMounts[0].mountPath: must be an absolute path (line 30)",
                "profiles[2].activeDeadlineSeconds: must be a whole number of at least 1 (line 32)",
                "profiles[2].maxRunners: must be a whole number of at least 1 (line 31)",
                "profiles[2].podTemplatePatch.spec.containers[0].name: missing: containers are merged by name (line 36)",
                "profiles[2].name: 'fine' is the name of an earlier profile too (line 9)",
            ]
        )
    }

    @Test func refusesAnInvalidFileAtStartNamingTheSettingAndThePath() throws {
        do {
            _ = try Self.configuration("profiles:\n  - name: a\n    match: self-hosted\n    nodeSelector: [x]\n")
            Issue.record("expected an invalid configuration")
        } catch {
            #expect(
                error.description
                    == "PROFILES_FILE: \(Self.path): profiles[0].nodeSelector: must be a mapping (line 4)"
            )
        }
        let example = try Self.example()
        do {
            _ = try Self.configuration(example, environment: ["LABEL_MATCHERS": "gpu"])
            Issue.record("expected an invalid configuration")
        } catch {
            #expect(error.description == "LABEL_MATCHERS: unset it with PROFILES_FILE: each profile's `match` decides")
        }
        #expect(throws: ConfigurationErrors.self) { try Self.configuration("") }
        #expect(throws: ConfigurationErrors.self) { try Self.configuration("profiles: [") }
    }

    @Test func checkConfigListsTheProfiles() throws {
        let check = ConfigurationCheck(
            environment: [
                "DRY_RUN": "true", "WEBHOOK_SECRET": "a-webhook-secret-of-some-length", "PROFILES_FILE": Self.path,
            ],
            files: InMemoryFiles([Self.path: try Self.example()])
        )
        #expect(check.isValid)
        #expect(check.text.contains("  profiles: \(Self.path)"))
        #expect(
            check.text.contains(
                "    docker: match 'self-hosted+docker', labels [self-hosted, linux, x64, docker], mode dind, image"
                    + " ghcr.io/actions/actions-runner:latest, maxRunners 4"
            )
        )
        let bad = ConfigurationCheck(
            environment: [
                "DRY_RUN": "true", "WEBHOOK_SECRET": "a-webhook-secret-of-some-length", "PROFILES_FILE": Self.path,
            ],
            files: InMemoryFiles([Self.path: "profiles:\n  - name: a\n    match: x\n    mode: vm\n    maxRunners: -1\n"]
            )
        )
        #expect(!bad.isValid)
        #expect(bad.problems.count == 2)
    }
}

@Suite struct ProfilesReloaderTests {
    /// good → bad (the good profiles stay, and it says why) → good again; read by path each time.
    @Test func keepsTheLastGoodProfilesWhileTheFileIsInvalid() async throws {
        let path = ProfilesFileTests.path
        let good = try ProfilesFileTests.example()
        let files = MutableFiles([path: good])
        let configuration = try ProfilesFileTests.configuration(good)
        let store = RunnerProfileStore(configuration.runnerProfiles)
        let clock = ManualClock()
        let metrics = Metrics()
        let logs = LogCapture()
        let reloader = ProfilesReloader(
            path: path,
            files: files,
            store: store,
            initialText: configuration.profilesText,
            clock: clock,
            metrics: metrics,
            logger: logs.logger()
        ) { configuration.runnerProfiles(from: $0) }
        let loop = Task { try await reloader.run() }
        defer { loop.cancel() }
        func tick() async throws {
            try await clock.waitForSleepers()
            clock.advance(by: .seconds(10))
            try await clock.waitForSleepers()
        }
        func exposition() -> String { String(decoding: metrics.exposition(), as: UTF8.self) }

        try await tick()  // unchanged: nothing happens
        #expect(store.current.profiles.map(\.displayName) == ["arm64", "docker", "gpu", "default"])
        #expect(!logs.text.contains("reloaded"))

        files.set(path, good.replacingOccurrences(of: "effect: NoSchedule", with: "effect: Sometimes"))
        try await tick()
        #expect(store.current.profiles.map(\.displayName) == ["arm64", "docker", "gpu", "default"])
        #expect(reloader.problem?.contains("profiles[0].tolerations[0].effect: must be one of") == true)
        #expect(logs.text.contains("runner profiles file refused; the profiles in force stay"))
        #expect(exposition().contains("runner_profiles_file_valid 0"))
        #expect(exposition().contains(#"runner_profiles_reloads_total{result="invalid"} 1"#))
        try await tick()  // the same bad file is not reported again
        #expect(exposition().contains(#"runner_profiles_reloads_total{result="invalid"} 1"#))

        files.set(path, "profiles:\n  - name: only\n    match: self-hosted\n    maxRunners: 2\n")
        try await tick()
        #expect(store.current.profiles.map(\.displayName) == ["only"])
        #expect(store.current.profiles.first?.maxRunners == 2)
        #expect(reloader.problem == nil)
        #expect(exposition().contains("runner_profiles_file_valid 1"))
        #expect(exposition().contains(#"runner_profiles_reloads_total{result="ok"} 1"#))

        files.set(path, nil)  // the ConfigMap is gone: refused, the profiles stay
        try await tick()
        #expect(store.current.profiles.map(\.displayName) == ["only"])
        #expect(reloader.problem == "the file does not exist")
    }
}
