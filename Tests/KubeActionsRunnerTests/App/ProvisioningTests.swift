import Testing

@testable import App
@testable import Observability
@testable import Runners
@testable import Support
@testable import TestSupport

/// GitHub's content-creating limits hold per credential: the composition root keys the content budget by the
/// credential that serves each owner.
@Suite struct ContentBudgetKeyTests {
    @Test func oneTokenIsOneCredential() throws {
        let key = Provisioning.contentKey(
            try Configuration(environment: ["WEBHOOK_SECRET": "s", "GITHUB_TOKEN": "t"], files: InMemoryFiles())
        )
        #expect(key("octo") == "" && key("hubot") == "")
    }

    @Test func anOwnersTokenIsItsOwnCredentialAndTheDefaultServesTheRest() throws {
        let key = Provisioning.contentKey(
            try Configuration(
                environment: [
                    "WEBHOOK_SECRET": "s", "GITHUB_TOKEN": "t",
                    "GITHUB_TOKENS": #"[{"owner":"Octo-Org","token":"ghp_a"}]"#,
                ],
                files: InMemoryFiles()
            )
        )
        #expect(key("octo-org") == "octo-org" && key("OCTO-ORG") == "octo-org")
        #expect(key("hubot") == "" && key("someone") == "")
    }

    @Test func anAppHasOneInstallationPerAccount() throws {
        let key = Provisioning.contentKey(
            try Configuration(
                environment: ["WEBHOOK_SECRET": "s", "GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": "k"],
                files: InMemoryFiles()
            )
        )
        #expect(key("Octo-Org") == "octo-org" && key("hubot") == "hubot")
    }
}

/// A dry run sends nothing to GitHub, so nothing in it is paced by GitHub's content-creating limits.
@Suite struct DryRunPacingTests {
    @Test func aDryRunProvisionsPastTheContentBudget() async throws {
        let configuration = try Configuration(
            environment: ["WEBHOOK_SECRET": "s", "DRY_RUN": "true", "CONTENT_REQUESTS_PER_MINUTE": "1"],
            files: InMemoryFiles()
        )
        #expect(configuration.contentRequestsPerMinute == 1)
        let provisioning = try Provisioning.make(
            configuration: configuration,
            environment: [:],
            files: InMemoryFiles(),
            metrics: Metrics(),
            logger: LogCapture().logger()
        )
        for id in Int64(1)...3 {
            var request = Samples.request
            request.jobID = id
            let outcome = try await provisioning.provisioner.provision(request)
            #expect(outcome == .created(runnerJob: request.runnerJobName), "job \(id)")
        }
    }
}

/// `REDELIVER_FAILED_DELIVERIES`: on by default, the reconciler gets the redelivery and the webhook its registry.
@Suite struct RedeliveryWiringTests {
    func provisioning(_ environment: [String: String]) throws -> Provisioning {
        let configuration = try Configuration(
            environment: ["WEBHOOK_SECRET": "s", "GITHUB_TOKEN": "t"].merging(environment) { $1 },
            files: InMemoryFiles()
        )
        return Provisioning.assemble(
            configuration: configuration,
            github: FakeGitHubAPI(),
            rateLimitRemaining: { nil },
            kubernetes: FakeKubernetesAPI(),
            metrics: Metrics(),
            logger: LogCapture().logger()
        )
    }

    @Test func isOnByDefault() throws {
        let provisioning = try provisioning([:])
        #expect(provisioning.hooks != nil && provisioning.deliveryRecovery != nil)
    }

    @Test(arguments: [["REDELIVER_FAILED_DELIVERIES": "false"], ["DRY_RUN": "true"]])
    func isOffWhenSwitchedOffOrInADryRun(environment: [String: String]) throws {
        let provisioning = try provisioning(environment)
        #expect(provisioning.hooks == nil && provisioning.deliveryRecovery == nil)
    }
}

/// `PROFILES_FILE` in the composition root: the provisioner renders the profile a job's labels choose, a reloader
/// runs among the services, and a reload reaches the provisioner.
@Suite struct ProfilesWiringTests {
    @Test func theProvisionerServesTheFilesProfilesAndTheirReloads() async throws {
        let path = "/etc/kube-actions-runner/profiles/profiles.yaml"
        let files = MutableFiles([path: try Fixtures.text("profiles/profiles.yaml")])
        let configuration = try Configuration(
            environment: ["WEBHOOK_SECRET": "s", "DRY_RUN": "true", "PROFILES_FILE": path],
            files: files
        )
        let provisioning = try Provisioning.make(
            configuration: configuration,
            environment: [:],
            files: files,
            metrics: Metrics(),
            logger: LogCapture().logger()
        )
        let reloader = try #require(provisioning.profilesReloader)
        #expect(provisioning.services.contains { $0 as? ProfilesReloader === reloader })
        var request = Samples.request
        request.labels = ["self-hosted", "arm64"]
        #expect(try await provisioning.provisioner.provision(request) == .created(runnerJob: "runner-289782451"))
        let job = try #require(provisioning.dryRunCluster?.created.first { $0.kind == "Job" })
        #expect(job.manifest["spec"]?["template"]?["spec"]?["nodeSelector"]?["kubernetes.io/arch"] == "arm64")

        files.set(path, "profiles:\n  - name: only\n    match: self-hosted\n    nodeSelector: {pool: ci}\n")
        reloader.check()
        request.jobID = 2
        #expect(try await provisioning.provisioner.provision(request) == .created(runnerJob: "runner-2"))
        let second = try #require(provisioning.dryRunCluster?.created.last { $0.kind == "Job" })
        #expect(second.manifest["metadata"]?["labels"]?["kube-actions-runner/profile"] == "only")
        #expect(second.manifest["spec"]?["template"]?["spec"]?["nodeSelector"]?["pool"] == "ci")
    }
}
