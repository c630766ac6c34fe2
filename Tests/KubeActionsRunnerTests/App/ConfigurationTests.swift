import Foundation
import Testing

@testable import App
@testable import Observability
@testable import Runners
@testable import Support
@testable import TestSupport

@Suite struct ConfigurationTests {
    @Test func appliesTheOriginalDesignsDefaults() throws {
        let configuration = try Configuration(
            environment: ["WEBHOOK_SECRET": "w", "GITHUB_TOKEN": "t"],
            files: InMemoryFiles()
        )
        #expect(configuration.runnerMode == .dindRootless)
        #expect(configuration.runnerImage == "ghcr.io/actions/actions-runner:latest")
        #expect(configuration.dindImage == "docker:dind")
        #expect(configuration.namespace == "default")
        #expect(configuration.port == 8080)
        #expect(configuration.labelMatcher == .selfHosted)
        #expect(configuration.githubAPIURL == "https://api.github.com")
        #expect(configuration.jobTTLSeconds == 300)
        #expect(configuration.runnerGroupID == 1)
        #expect(configuration.maxBodyBytes == 1024 * 1024)
        #expect(configuration.maxConnections == 4096)
        #expect(configuration.maxInflightBodyBytes == 32 * 1024 * 1024)
        #expect(configuration.logFormat == .json)
        #expect(configuration.logLevel == .info)
        #expect(configuration.dryRun == false)
        #expect(configuration.webhookSecret.value == "w")
        #expect(configuration.githubToken?.value == "t")
    }

    @Test func readsEveryKey() throws {
        let configuration = try Configuration(
            environment: [
                "WEBHOOK_SECRET": "w", "WEBHOOK_SECRET_PREVIOUS": "old", "GITHUB_TOKEN": "t",
                "GITHUB_API_URL": "https://ghes.example.com/api/v3/", "RUNNER_MODE": "DIND", "RUNNER_IMAGE": "r:1",
                "DIND_IMAGE": "docker:27-dind", "DIND_MTU": "1400", "NAMESPACE": "runners", "LABEL_MATCHERS": "a+b;c",
                "PORT": "9090", "LISTEN_ADDRESS": "::", "JOB_TTL_SECONDS": "0", "RUNNER_GROUP_ID": "3",
                "MAX_BODY_BYTES": "26214400", "MAX_CONNECTIONS": "100", "LOG_LEVEL": "debug", "LOG_FORMAT": "text",
                "DRY_RUN": "yes", "MAX_INFLIGHT_BODY_BYTES": "40000000",
            ],
            files: InMemoryFiles()
        )
        #expect(configuration.previousWebhookSecret?.value == "old")
        #expect(configuration.githubAPIURL == "https://ghes.example.com/api/v3")
        #expect(configuration.runnerMode == .dind)
        #expect(configuration.runnerImage == "r:1" && configuration.dindImage == "docker:27-dind")
        #expect(configuration.dindMTU == 1400)
        #expect(configuration.namespace == "runners")
        #expect(configuration.labelMatcher.description == "a+b;c")
        #expect(configuration.port == 9090 && configuration.listenAddress == "::")
        #expect(configuration.jobTTLSeconds == 0 && configuration.runnerGroupID == 3)
        #expect(configuration.maxBodyBytes == 26_214_400 && configuration.maxConnections == 100)
        #expect(configuration.logLevel == .debug && configuration.logFormat == .text)
        #expect(configuration.dryRun)
        #expect(configuration.maxInflightBodyBytes == 40_000_000)
    }

    @Test func readsAMetricsPortThatDiffersFromThePort() throws {
        let environment = ["WEBHOOK_SECRET": "w", "DRY_RUN": "true", "PORT": "8080"]
        #expect(try Configuration(environment: environment, files: InMemoryFiles()).metricsPort == nil)
        let separate = try Configuration(
            environment: environment.merging(["METRICS_PORT": "9090"]) { $1 },
            files: InMemoryFiles()
        )
        #expect(separate.metricsPort == 9090)
        do {
            _ = try Configuration(
                environment: environment.merging(["METRICS_PORT": "8080"]) { $1 },
                files: InMemoryFiles()
            )
            Issue.record("expected an error")
        } catch {
            #expect(error.errors.map(\.key) == ["METRICS_PORT"])
        }
    }

    @Test func theInflightBudgetMustHoldOneLargestRequest() throws {
        let environment = ["WEBHOOK_SECRET": "w", "DRY_RUN": "true", "MAX_BODY_BYTES": "2000000"]
        let fits = try Configuration(
            environment: environment.merging(["MAX_INFLIGHT_BODY_BYTES": "2131072"]) { $1 },
            files: InMemoryFiles()
        )
        #expect(fits.maxInflightBodyBytes == 2_131_072)
        #expect(throws: ConfigurationErrors.self) {
            try Configuration(
                environment: environment.merging(["MAX_INFLIGHT_BODY_BYTES": "2131071"]) { $1 },
                files: InMemoryFiles()
            )
        }
    }

    @Test func readsSecretsFromFilesAndTheNamespaceFromTheServiceAccount() throws {
        let files = InMemoryFiles([
            "/secrets/webhook": "from-file\n",
            "/secrets/token": "ghp_token\r\n",
            Configuration.Defaults.serviceAccountNamespaceFile: "github-runners",
        ])
        let configuration = try Configuration(
            environment: ["WEBHOOK_SECRET_FILE": "/secrets/webhook", "GITHUB_TOKEN_FILE": "/secrets/token"],
            files: files
        )
        #expect(configuration.webhookSecret.value == "from-file")
        #expect(configuration.githubToken?.value == "ghp_token")
        #expect(configuration.namespace == "github-runners")
    }

    @Test func dryRunNeedsNoToken() throws {
        let configuration = try Configuration(
            environment: ["WEBHOOK_SECRET": "w", "DRY_RUN": "true"],
            files: InMemoryFiles()
        )
        #expect(configuration.githubToken == nil)
    }

    @Test func reportsEveryProblemAtOnceNamingItsKey() {
        let environment = [
            "WEBHOOK_SECRET": "super-secret-value", "WEBHOOK_SECRET_FILE": "/x", "GITHUB_TOKEN_FILE": "/missing",
            "RUNNER_MODE": "vm", "PORT": "99999", "JOB_TTL_SECONDS": "-1", "RUNNER_GROUP_ID": "zero",
            "MAX_BODY_BYTES": "30000000", "LABEL_MATCHERS": "linux;", "NAMESPACE": "Not_Valid", "LOG_LEVEL": "loud",
            "LOG_FORMAT": "xml", "DRY_RUN": "maybe", "GITHUB_API_URL": "ftp://x", "DIND_MTU": "10",
        ]
        do {
            _ = try Configuration(environment: environment, files: InMemoryFiles())
            Issue.record("expected errors")
        } catch {
            let keys = error.errors.map(\.key)
            #expect(
                Set(keys) == [
                    "WEBHOOK_SECRET", "GITHUB_TOKEN_FILE", "RUNNER_MODE", "PORT", "JOB_TTL_SECONDS", "RUNNER_GROUP_ID",
                    "MAX_BODY_BYTES", "LABEL_MATCHERS", "NAMESPACE", "LOG_LEVEL", "LOG_FORMAT", "DRY_RUN",
                    "GITHUB_API_URL",
                    "DIND_MTU",
                ]
            )
            #expect(error.description.split(separator: "\n").count == error.errors.count)
            #expect(!error.description.contains("super-secret-value"))
        }
    }

    /// GitHub access: a token per owner, or a GitHub App instead of tokens, each checked at parse time.
    @Test func readsGitHubAccessAndRefusesContradictions() throws {
        let base = ["WEBHOOK_SECRET": "s"]
        let tokens = try Configuration(
            environment: base.merging(["GITHUB_TOKENS": #"[{"owner":"octo","token":"ghp_octo_secret"}]"#]) { $1 },
            files: InMemoryFiles()
        )
        #expect(tokens.githubOwnerTokens.map(\.owner) == ["octo"] && tokens.githubToken == nil)
        let app = try Configuration(
            environment: base.merging(["GITHUB_APP_ID": "12345", "GITHUB_APP_PRIVATE_KEY_FILE": "/key.pem"]) { $1 },
            files: InMemoryFiles(["/key.pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n"])
        )
        #expect(app.githubAppID == "12345" && app.githubAppPrivateKey != nil && app.usesGitHubApp)
        // A PEM written on one line with literal \n, as environment variables often carry it.
        let oneLine = try Configuration(
            environment: base.merging([
                "GITHUB_APP_ID": "1",
                "GITHUB_APP_PRIVATE_KEY": #"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----"#,
            ]) { $1 },
            files: InMemoryFiles()
        )
        #expect(oneLine.githubAppPrivateKey?.value == "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----")

        func errors(_ environment: [String: String]) -> [ConfigurationError] {
            do {
                _ = try Configuration(environment: base.merging(environment) { $1 }, files: InMemoryFiles())
                return []
            } catch {
                return error.errors
            }
        }
        let badTokens = errors(["GITHUB_TOKENS": #"[{"owner":"octo","token":"ghp_leak"}, "#])
        #expect(badTokens.map(\.key) == ["GITHUB_TOKENS"])
        #expect(!badTokens.description.contains("ghp_leak"))
        #expect(errors(["GITHUB_APP_ID": "1"]).map(\.key) == ["GITHUB_APP_PRIVATE_KEY"])
        #expect(errors(["GITHUB_APP_PRIVATE_KEY": "k"]).map(\.key) == ["GITHUB_APP_ID"])
        #expect(
            errors(["GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": "k", "GITHUB_TOKEN": "t"]).map(\.key)
                == ["GITHUB_APP_ID"]
        )
    }

    /// Organization runners, the allow-list, the runner CA and the proxy: values and contradictions.
    @Test func readsRunnerScopeAllowListCAAndProxy() throws {
        let base = ["WEBHOOK_SECRET": "s", "GITHUB_TOKEN": "t"]
        let configuration = try Configuration(
            environment: base.merging([
                "RUNNER_SCOPE": "org", "RUNNER_GROUP": "linux-x64", "ALLOWED_OWNERS": "octo-org, hubot",
                "ALLOWED_REPOSITORIES": "other/infra-*", "RUNNER_CA_CONFIGMAP": "ghes-ca",
                "HTTPS_PROXY": "http://user:pw@proxy:3128", "NO_PROXY": "10.0.0.1,.svc",
            ]) { $1 },
            files: InMemoryFiles()
        )
        #expect(configuration.runnerScope == .organization && configuration.runnerGroup == "linux-x64")
        #expect(configuration.allowList.allows(owner: "Octo-Org", repository: "x"))
        #expect(configuration.allowList.allows(owner: "other", repository: "infra-prod"))
        #expect(!configuration.allowList.allows(owner: "other", repository: "web"))
        #expect(configuration.allowList.literalOwners == ["octo-org", "hubot", "other"])
        #expect(configuration.runnerCABundle == RunnerJob.CABundle(.configMap("ghes-ca"), key: "ca.crt"))
        #expect(configuration.runnerProxy?.noProxy == "10.0.0.1,.svc")
        #expect(configuration.runnerProxy?.https?.value == "http://user:pw@proxy:3128")
        #expect(try Configuration(environment: base, files: InMemoryFiles()).runnerProxy == nil)

        func keys(_ environment: [String: String]) -> [String] {
            do {
                _ = try Configuration(environment: base.merging(environment) { $1 }, files: InMemoryFiles())
                return []
            } catch {
                return error.errors.map(\.key)
            }
        }
        #expect(keys(["RUNNER_GROUP": "g"]) == ["RUNNER_GROUP"])  // repository scope
        #expect(keys(["RUNNER_SCOPE": "org", "RUNNER_GROUP": "g", "RUNNER_GROUP_ID": "3"]) == ["RUNNER_GROUP"])
        #expect(keys(["RUNNER_SCOPE": "enterprise"]) == ["RUNNER_SCOPE"])
        #expect(keys(["ALLOWED_REPOSITORIES": "no-slash"]) == ["ALLOWED_REPOSITORIES"])
        #expect(keys(["ALLOWED_OWNERS": "a/b"]) == ["ALLOWED_OWNERS"])
        #expect(keys(["RUNNER_CA_CONFIGMAP": "a", "RUNNER_CA_SECRET": "b"]) == ["RUNNER_CA_CONFIGMAP"])
    }

    /// `kubernetes` mode's service account and work volume: Kubernetes names and sizes, refused at start otherwise.
    @Test func readsTheContainerHooksSettings() throws {
        let base = ["WEBHOOK_SECRET": "s", "GITHUB_TOKEN": "t", "RUNNER_MODE": "kubernetes"]
        let defaults = try Configuration(environment: base, files: InMemoryFiles())
        #expect(defaults.runnerMode == .kubernetes && defaults.runnerMode.podSecurityLevel == "baseline")
        #expect(defaults.containerHooks == RunnerJob.ContainerHooks())
        let set = try Configuration(
            environment: base.merging([
                "RUNNER_SERVICE_ACCOUNT": "ci-hooks", "RUNNER_WORK_VOLUME_SIZE": "20Gi",
                "RUNNER_WORK_VOLUME_STORAGE_CLASS": "local-path.fast",
            ]) { $1 },
            files: InMemoryFiles()
        )
        #expect(
            set.containerHooks
                == RunnerJob.ContainerHooks(
                    serviceAccountName: "ci-hooks",
                    workVolumeSize: "20Gi",
                    workVolumeStorageClass: "local-path.fast"
                )
        )
        for (key, value) in [
            ("RUNNER_SERVICE_ACCOUNT", "Hooks"), ("RUNNER_SERVICE_ACCOUNT", "-x"), ("RUNNER_WORK_VOLUME_SIZE", "20GB"),
            ("RUNNER_WORK_VOLUME_SIZE", "0Gi"), ("RUNNER_WORK_VOLUME_SIZE", "1.5Gi"), ("RUNNER_WORK_VOLUME_SIZE", "Gi"),
            ("RUNNER_WORK_VOLUME_STORAGE_CLASS", "fast..ssd"),
        ] {
            do {
                _ = try Configuration(environment: base.merging([key: value]) { $1 }, files: InMemoryFiles())
                Issue.record("\(key)=\(value) was accepted")
            } catch {
                #expect(error.errors.map(\.key) == [key], "\(key)=\(value)")
                #expect(error.description.contains("'\(value)'"))
            }
        }
    }

    @Test func requiresTheWebhookSecretAndTheToken() {
        #expect(
            throws: ConfigurationErrors(errors: [
                ConfigurationError(
                    key: "WEBHOOK_SECRET",
                    message: "required (set WEBHOOK_SECRET or WEBHOOK_SECRET_FILE)"
                ),
                ConfigurationError(
                    key: "GITHUB_TOKEN",
                    message:
                        "required (set GITHUB_TOKEN or GITHUB_TOKEN_FILE, GITHUB_TOKENS, or a GitHub App's GITHUB_APP_ID)"
                ),
            ])
        ) {
            try Configuration(environment: [:], files: InMemoryFiles())
        }
    }

    @Test func secretsNeverPrintThemselves() throws {
        let configuration = try Configuration.make(secret: "hunter2")
        #expect(!"\(configuration)".contains("hunter2"))
        #expect(!String(reflecting: configuration).contains("hunter2"))
        var dumped = ""
        dump(configuration, to: &dumped)
        #expect(!dumped.contains("hunter2"))
    }

    /// README's configuration table is rendered from `Configuration.settings`; this compares the two exactly.
    /// After changing a setting, `UPDATE_README=1 swift test --filter ConfigurationTests` rewrites README's table
    /// (and still fails once, so that a run that rewrote it never passes unnoticed).
    @Test func readmesConfigurationTableIsRenderedFromTheSettings() throws {
        let path = Fixtures.directory.appendingPathComponent("../../../README.md")
        let readme = String(decoding: try Data(contentsOf: path), as: UTF8.self)
        let lines = readme.split(separator: "\n", omittingEmptySubsequences: false)
        let header = try #require(lines.firstIndex(of: "| Variable | Default | Description |"))
        let end = lines[header...].firstIndex { !$0.hasPrefix("|") } ?? lines.endIndex
        let table = lines[header..<end].joined(separator: "\n")
        let rendered = Configuration.markdownTable
        if table != rendered, ProcessInfo.processInfo.environment["UPDATE_README"] == "1" {
            let updated = (lines[..<header] + [Substring(rendered)] + lines[end...]).joined(separator: "\n")
            try Data(updated.utf8).write(to: path, options: .atomic)  // other tests read README meanwhile
            Issue.record("README's configuration table was rewritten from the settings: review and commit it")
            return
        }
        #expect(
            table == rendered,
            "README's configuration table differs from the settings: run UPDATE_README=1 swift test --filter ConfigurationTests"
        )
        // Both directions, row by row, so that a failure names the variable.
        let documented = table.split(separator: "\n").dropFirst(2).map { String($0.dropFirst(3).prefix { $0 != "`" }) }
        let names = Configuration.settings.map(\.name)
        #expect(documented == names)
        #expect(names.count >= 30 && Set(names).count == names.count)
    }

    /// `--help` lists every setting, in lines that fit an 80-column terminal (ArgumentParser rewraps longer ones).
    @Test func helpListsEverySetting() {
        let help = Configuration.environmentHelp
        let listed = help.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("  "), !line.hasPrefix("   ") else { return nil }
            return String(line.dropFirst(2).prefix { $0 != " " })
        }
        #expect(listed == Configuration.settings.map(\.name))
        for setting in Configuration.settings where setting.isSecret {
            #expect(help.contains("\(setting.name)_FILE"))
        }
        for line in help.split(separator: "\n") { #expect(line.count <= 78, "too long for --help: \(line)") }
    }

    /// The other direction: every variable the service reads is a setting, so README and `--help` document it.
    /// Parsing records every name it looks up; the Kubernetes layer, which reads its own variables, is scanned.
    @Test func everyVariableTheServiceReadsIsASetting() throws {
        let names = Set(Configuration.settings.map(\.name))
        var lookedUp: Set<String> = []
        // Unset variables make every fallback run (POD_NAME, then HOSTNAME); set ones every check.
        for environment in [[:], ["WEBHOOK_SECRET": "w", "GITHUB_TOKEN": "t", "METRICS_PORT": "9090"]] {
            var reader = SettingsReader(environment: environment, files: InMemoryFiles())
            _ = Configuration.read(with: &reader)
            lookedUp.formUnion(reader.lookedUp)
        }
        #expect(lookedUp.count >= 30)
        let secretFiles = Set(Configuration.settings.filter(\.isSecret).map { $0.name + "_FILE" })
        // Set by Kubernetes or the shell rather than by an operator.
        let ambient: Set<String> = ["HOSTNAME", "HOME", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"]
        for name in lookedUp.subtracting(ambient).subtracting(secretFiles) {
            #expect(names.contains(name), "parsing reads \(name), which is not a setting")
        }
        for setting in Configuration.settings where setting.read != nil {
            #expect(lookedUp.contains(setting.name), "the setting \(setting.name) does not read its variable")
        }

        let source = try String(decoding: Fixtures.bytes("../../../Sources/Kubernetes/KubeConfig.swift"), as: UTF8.self)
        let read = Set(source.matches(of: #/environment\["([A-Z][A-Z0-9_]+)"\]/#).map { String($0.output.1) })
        #expect(read.count >= 3)
        for name in read.subtracting(ambient) {
            #expect(names.contains(name), "KubeConfig reads \(name), which is not a setting")
        }
        for setting in Configuration.settings where setting.read == nil {
            #expect(
                read.contains(setting.name),
                "\(setting.name) is documented as read elsewhere, but nothing reads it"
            )
        }
    }

    @Test func everyReapReasonIsExplainedInTheReadmesTroubleshooting() throws {
        let readme = try String(decoding: Fixtures.bytes("../../../README.md"), as: UTF8.self)
        for reason in Metrics.reapReasons {
            #expect(readme.contains("| `\(reason)` |"), "README's troubleshooting does not explain reason \(reason)")
        }
    }

    @Test func derivesTheOwnerMarkerFromTheNamespaceUnlessSet() throws {
        let derived = try Configuration(
            environment: ["WEBHOOK_SECRET": "w", "GITHUB_TOKEN": "t", "NAMESPACE": "github-runners-jobs"],
            files: InMemoryFiles()
        )
        #expect(derived.ownerLabel == "kar-github-runners-jobs")
        let set = try Configuration(
            environment: ["WEBHOOK_SECRET": "w", "GITHUB_TOKEN": "t", "RUNNER_OWNER_LABEL": "team-a.runners"],
            files: InMemoryFiles()
        )
        #expect(set.ownerLabel == "team-a.runners")
        #expect(throws: ConfigurationErrors.self) {
            try Configuration(
                environment: ["WEBHOOK_SECRET": "w", "GITHUB_TOKEN": "t", "RUNNER_OWNER_LABEL": "not a label"],
                files: InMemoryFiles()
            )
        }
    }
}
