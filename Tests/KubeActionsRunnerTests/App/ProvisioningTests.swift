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
