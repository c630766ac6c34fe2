import Testing

@testable import App
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
