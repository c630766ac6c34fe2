import Testing

@testable import App
@testable import Observability
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

    @Test func requiresTheWebhookSecretAndTheToken() {
        #expect(
            throws: ConfigurationErrors(errors: [
                ConfigurationError(
                    key: "WEBHOOK_SECRET",
                    message: "required (set WEBHOOK_SECRET or WEBHOOK_SECRET_FILE)"
                ),
                ConfigurationError(key: "GITHUB_TOKEN", message: "required (set GITHUB_TOKEN or GITHUB_TOKEN_FILE)"),
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

    @Test func everyKeyIsDocumentedInTheReadme() throws {
        let readme = try String(decoding: Fixtures.bytes("../../../README.md"), as: UTF8.self)
        for key in Configuration.keys {
            #expect(readme.contains("| `\(key.name)` |"), "README's configuration table lacks \(key.name)")
        }
    }

    /// The other direction: every variable in README's table and every variable the code reads is a documented key
    /// (so `--help`, which prints the keys, lists them all).
    @Test func everyVariableReadOrDocumentedIsAKey() throws {
        let names = Set(Configuration.keys.map(\.name))
        let readme = try String(decoding: Fixtures.bytes("../../../README.md"), as: UTF8.self)
        let table = readme.components(separatedBy: "| Variable | Default | Description |")[1]
            .components(separatedBy: "\n\n")[0]
        let documented = table.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("| `") else { return nil }
            return String(line.dropFirst(3).prefix { $0 != "`" })
        }
        #expect(documented.count >= 30)
        for name in documented { #expect(names.contains(name), "README documents \(name), which is not a key") }
        var read: Set<String> = []
        for file in ["App/Configuration+Environment.swift", "Kubernetes/KubeConfig.swift"] {
            let source = try String(
                decoding: Fixtures.bytes("../../../Sources/\(file)"),
                as: UTF8.self
            )
            // reader.int("NAME", …), reader.value("NAME"), environment["NAME"]: the names the parser looks up.
            for match in source.matches(of: #/(?:reader\.\w+\(|environment\[)"([A-Z][A-Z0-9_]+)"/#) {
                read.insert(String(match.output.1))
            }
        }
        #expect(read.count >= 25)
        // Set by Kubernetes or the shell rather than by an operator.
        let ambient: Set<String> = ["HOSTNAME", "HOME", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"]
        for name in read.subtracting(ambient) {
            #expect(names.contains(name), "the code reads \(name), which is not a documented key")
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
