import Testing

@testable import App
@testable import Observability
@testable import Support
@testable import TestSupport

@Suite struct StartupChecksTests {
    @Test(arguments: [
        (4096, 1_048_576, 4096),  // a container's usual limit: nothing to clamp
        (4096, 4096 + 576, 4096),  // exactly enough besides the reserve
        (4096, 4096 + 575, 4095),  // one descriptor short
        (4096, 1024, 512),
        (4096, 64, 32),  // a tiny limit keeps half for the rest
        (4096, 20, 16),  // never below 16
    ])
    func clampsConnectionsUnderTheDescriptorLimit(configured: Int, limit: Int, expected: Int) {
        #expect(StartupChecks.clampedConnections(configured, descriptorLimit: limit) == expected)
    }

    @Test func readsTheCgroupMemoryLimit() {
        #expect(
            StartupChecks.cgroupMemoryLimit(files: InMemoryFiles(["/sys/fs/cgroup/memory.max": "134217728\n"]))
                == 134_217_728
        )
        #expect(StartupChecks.cgroupMemoryLimit(files: InMemoryFiles(["/sys/fs/cgroup/memory.max": "max\n"])) == nil)
        let v1 = InMemoryFiles(["/sys/fs/cgroup/memory/memory.limit_in_bytes": "268435456"])
        #expect(StartupChecks.cgroupMemoryLimit(files: v1) == 268_435_456)
        let v1Unlimited = InMemoryFiles(["/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712"])
        #expect(StartupChecks.cgroupMemoryLimit(files: v1Unlimited) == nil)
        #expect(StartupChecks.cgroupMemoryLimit(files: InMemoryFiles()) == nil)
    }

    @Test func theDefaultsFitTheShippedDeploymentsMemoryLimitWithHeadroom() throws {
        let deployment = String(decoding: try Fixtures.bytes("../../../kubernetes/deployment.yaml"), as: UTF8.self)
        let limits = try #require(deployment.range(of: "limits:\n              memory: "))
        let value = deployment[limits.upperBound...].prefix { $0.isNumber }
        let limit = try #require(Int(value)) * 1024 * 1024  // Mi
        let bound = StartupChecks.memoryBound(try Configuration.make())
        #expect(bound <= limit * 9 / 10, "bound \(bound / 1_048_576) MiB against a \(limit / 1_048_576) MiB limit")
    }

    @Test func warnsWhenTheConfigurationCanOutgrowTheMemoryLimit() throws {
        let cgroup = InMemoryFiles(["/sys/fs/cgroup/memory.max": "134217728"])
        var fits = try Configuration.make()
        let quiet = LogCapture()
        StartupChecks.apply(to: &fits, descriptorLimit: 1_048_576, files: cgroup, logger: quiet.logger())
        #expect(!quiet.text.contains("more memory than the container's limit"))

        var tooMany = try Configuration.make()
        tooMany.maxConnections = 20_000
        let logs = LogCapture()
        StartupChecks.apply(to: &tooMany, descriptorLimit: 1_048_576, files: cgroup, logger: logs.logger())
        #expect(logs.text.contains("more memory than the container's limit"))
        #expect(logs.text.contains("\"limit_mib\":\"128\""))
    }

    @Test func clampsAndSaysSo() throws {
        var configuration = try Configuration.make()
        let logs = LogCapture()
        StartupChecks.apply(to: &configuration, descriptorLimit: 1024, files: InMemoryFiles(), logger: logs.logger())
        #expect(configuration.maxConnections == 512)
        #expect(logs.text.contains("MAX_CONNECTIONS clamped under the descriptor limit"))
    }

    @Test func warnsAboutAShortWebhookSecretWithoutPrintingIt() throws {
        let short = "tooshort15chars"  // 15 characters
        var configuration = try Configuration.make(secret: short, previousSecret: String(repeating: "k", count: 16))
        let logs = LogCapture()
        StartupChecks.apply(
            to: &configuration,
            descriptorLimit: 1_048_576,
            files: InMemoryFiles(),
            logger: logs.logger()
        )
        #expect(logs.all.filter { $0.contains("webhook secret is short") }.count == 1)
        #expect(logs.text.contains("\"key\":\"WEBHOOK_SECRET\""))
        #expect(logs.text.contains("\"length\":\"15\""))
        #expect(!logs.text.contains(short))
    }
}

@Suite struct CleartextCredentialsTests {
    private let kubeconfig = """
        apiVersion: v1
        kind: Config
        current-context: c
        clusters: [{name: k, cluster: {server: "http://127.0.0.1:8001"}}]
        contexts: [{name: c, context: {cluster: k, user: u}}]
        users: [{name: u, user: {token: kube-token-do-not-print}}]
        """

    private func make(allow: Bool) throws(Provisioning.Unavailable) -> Provisioning {
        var environment = ["WEBHOOK_SECRET": "a-webhook-secret-of-length", "GITHUB_TOKEN": "t", "KUBECONFIG": "/k"]
        if allow { environment["ALLOW_CLEARTEXT_CREDENTIALS"] = "true" }
        let configuration = try! Configuration(environment: environment, files: InMemoryFiles())
        return try Provisioning.make(
            configuration: configuration,
            environment: environment,
            files: InMemoryFiles(["/k": kubeconfig]),
            metrics: Metrics(),
            logger: LogCapture().logger()
        )
    }

    @Test func refusesAnHTTPServerWithATokenUnlessAllowed() throws {
        do {
            _ = try make(allow: false)
            Issue.record("expected a refusal")
        } catch {
            #expect(error.description.contains("ALLOW_CLEARTEXT_CREDENTIALS=true"))
            #expect(error.description.contains("http://127.0.0.1:8001"))
            #expect(!error.description.contains("kube-token-do-not-print"))
        }
        #expect(throws: Never.self) { _ = try make(allow: true) }
    }
}

@Suite struct DescriptorBudgetTests {
    /// Client connections, both upstream clients' connections and 16 others (listeners, the spare descriptor, files,
    /// epoll, eventfd, standard streams) fit under any descriptor limit, small ones included.
    @Test(arguments: [64, 100, 256, 576, 1024, 4096, 65_536, 1_048_576])
    func clientAndUpstreamConnectionsFitUnderTheLimit(limit: Int) {
        let connections = StartupChecks.clampedConnections(4096, descriptorLimit: limit)
        let upstream = StartupChecks.upstreamConnections(descriptorLimit: limit)
        #expect(connections + 2 * upstream + 16 <= limit)
        #expect(upstream >= 4 && upstream <= 256)
        if limit >= 4096 { #expect(upstream == 256) }
    }
}
