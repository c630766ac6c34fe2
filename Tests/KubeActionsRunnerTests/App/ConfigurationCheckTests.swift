import Testing

@testable import App
@testable import Support
@testable import TestSupport

@Suite struct ConfigurationCheckTests {
    @Test func summarizesAValidConfigurationWithoutSecrets() {
        let check = ConfigurationCheck(
            environment: [
                "WEBHOOK_SECRET": "webhook-secret-value", "GITHUB_TOKEN": "token-value", "DRY_RUN": "true",
                "NAMESPACE": "runners", "RUNNER_MODE": "dind",
            ],
            files: InMemoryFiles()
        )
        #expect(check.isValid)
        #expect(
            check.text == """
                configuration OK
                  mode: dind
                  namespace: runners
                  runner scope: repo (runner group id 1)
                  GitHub access: one token (GITHUB_TOKEN)
                  GitHub API: https://api.github.com
                  Kubernetes: none (DRY_RUN: nothing is sent to GitHub or Kubernetes)
                  label matchers: self-hosted
                """
        )
        #expect(!check.text.contains("secret-value"))
        #expect(!check.text.contains("token-value"))
    }

    @Test func namesTheKindOfGitHubAccess() {
        let tokens = ConfigurationCheck(
            environment: [
                "WEBHOOK_SECRET": "w", "DRY_RUN": "true", "GITHUB_TOKENS": #"[{"owner":"a","token":"token-value"}]"#,
                "RUNNER_SCOPE": "org", "RUNNER_GROUP": "ci",
            ],
            files: InMemoryFiles()
        )
        #expect(tokens.summary.first { $0.0 == "GitHub access" }?.1 == "a token for each of 1 owners (GITHUB_TOKENS)")
        #expect(tokens.summary.first { $0.0 == "runner scope" }?.1 == "org (runner group 'ci')")
        #expect(!tokens.text.contains("token-value"))
    }

    /// Every problem at once: the settings', the App key's and the cluster connection's.
    @Test func reportsEveryProblem() {
        let check = ConfigurationCheck(
            environment: [
                "RUNNER_MODE": "vm", "GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": "not-a-key-value",
                "KUBECONFIG": "/missing",
            ],
            files: InMemoryFiles()
        )
        #expect(!check.isValid)
        #expect(check.text.hasPrefix("invalid configuration:\n"))
        #expect(check.problems.contains { $0.hasPrefix("WEBHOOK_SECRET: required") })
        #expect(check.problems.contains { $0.hasPrefix("RUNNER_MODE: 'vm'") })
        #expect(check.problems.contains { $0.contains("GITHUB_APP_PRIVATE_KEY is not a PEM RSA private key") })
        #expect(check.problems.contains { $0.hasPrefix("Kubernetes: ") && $0.contains("/missing") })
        #expect(!check.text.contains("not-a-key-value"))
    }
}
