import Synchronization
import Testing

@testable import App
@testable import HTTPServer
@testable import Support
@testable import TestSupport
@testable import Webhook

@Suite struct ApplicationTests {
    @Test func servesHealthReadinessAndMetrics() async throws {
        try await withApplication(configuration: try .make()) { app in
            let (health, ready, metrics) = try await client(app.server.port) { connection in
                (
                    try connection.request("GET", "/health"), try connection.request("GET", "/ready"),
                    try connection.request("GET", "/metrics")
                )
            }
            #expect(health.status == 200 && health.text == "ok\n")
            #expect(ready.status == 200 && ready.text == "ready\n")
            #expect(metrics.status == 200)
            #expect(metrics.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
            #expect(metrics.text.contains("# TYPE webhook_outcomes_total counter"))
            // The first scrape already has every outcome and every shedding reason at 0, so alerts on rate() and
            // absent() work from the start.
            for outcome in WebhookOutcome.allCases {
                #expect(metrics.text.contains("webhook_outcomes_total{outcome=\"\(outcome.rawValue)\"} 0"))
            }
            for reason in ["budget_cut", "budget_wait", "descriptors"] {
                #expect(metrics.text.contains("http_requests_shed_total{reason=\"\(reason)\"} 0"))
            }
        }
    }

    @Test func withAMetricsPortTheWebhookPortServesOnlyTheWebhook() async throws {
        var configuration = try Configuration.make()
        configuration.metricsPort = 9090  // bound to an ephemeral port below
        let app = try Application.build(
            configuration: configuration,
            upstreams: .provisioner(RecordingProvisioner()),
            logger: LogCapture().logger(),
            serverConfiguration: .make(),
            metricsServerConfiguration: .make()
        )
        let metricsServer = try #require(app.metricsServer)
        let tasks = [Task { try await app.server.run() }, Task { try await metricsServer.run() }]
        defer {
            app.server.shutdown()
            metricsServer.shutdown()
        }
        let webhookPort = try await client(app.server.port) { connection in
            try ["/metrics", "/health", "/ready"].map { try connection.request("GET", $0).status }
                + [try connection.request("POST", "/webhook", body: Array("{}".utf8)).status]
        }
        #expect(webhookPort == [404, 404, 404, 401])  // unsigned delivery: the webhook route is there
        let operations = try await client(metricsServer.port) { connection in
            try ["/metrics", "/health", "/ready", "/webhook"].map { try connection.request("GET", $0).status }
        }
        #expect(operations == [200, 200, 200, 404])
        app.server.shutdown()
        metricsServer.shutdown()
        for task in tasks { try await task.value }
    }

    @Test func reportsNotReadyWithAReason() async throws {
        let provisioner = RecordingProvisioner(readiness: .notReady("Kubernetes API has not answered yet"))
        try await withApplication(configuration: try .make(), provisioner: provisioner) { app in
            let ready = try await client(app.server.port) { try $0.request("GET", "/ready") }
            #expect(ready.status == 503)
            #expect(ready.text == "not ready: Kubernetes API has not answered yet\n")
        }
    }

    @Test func answers404And405WithAllow() async throws {
        try await withApplication(configuration: try .make()) { app in
            let (missing, wrongMethod, getWebhook) = try await client(app.server.port) { connection in
                (
                    try connection.request("GET", "/nope"), try connection.request("POST", "/health"),
                    try connection.request("GET", "/webhook")
                )
            }
            #expect(missing.status == 404)
            #expect(wrongMethod.status == 405 && wrongMethod.header("Allow") == "GET, HEAD")
            #expect(getWebhook.status == 405 && getWebhook.header("Allow") == "POST")
        }
    }

    @Test func demoShowsTheFlowAndTheManifestsWithoutSecrets() async throws {
        let output = Mutex<[String]>([])
        let ok = try await Demo.run(environment: ["RUNNER_MODE": "dind"]) { line in output.withLock { $0.append(line) }
        }
        #expect(ok)
        let text = output.withLock { $0.joined(separator: "\n") }
        #expect(text.contains("-> 200 {\"outcome\":\"accepted\""))
        #expect(text.contains("-> 200 {\"outcome\":\"duplicate_delivery\""))
        #expect(text.contains("-> 401 unauthorized"))
        #expect(text.contains("\"kind\": \"Job\"") && text.contains("\"kind\": \"Secret\""))
        #expect(text.contains("\"kube-actions-runner/mode\": \"dind\""))
        #expect(text.contains("<redacted: the JIT config GitHub issues>"))
        #expect(!text.contains("dry-run-placeholder-jit-config"))
    }

    @Test func failsToStartOnATakenPort() throws {
        let first = try HTTPServer(configuration: .make(), logger: .init(label: "t")) { _ in .text(200, "") }
        var second = HTTPServer.Configuration.make()
        second.port = first.port
        #expect(throws: HTTPServerError.self) {
            _ = try HTTPServer(configuration: second, logger: .init(label: "t")) { _ in .text(200, "") }
        }
        first.shutdown()
    }
}

/// A refused `PROFILES_FILE` keeps the service ready (the last good profiles serve) and says why on `/ready`.
@Suite struct ProfilesReadinessTests {
    @Test func aRefusedProfilesFileIsAWarningOnReady() async throws {
        let path = "/etc/kube-actions-runner/profiles/profiles.yaml"
        let files = MutableFiles([path: try Fixtures.text("profiles/profiles.yaml")])
        let environment = ["WEBHOOK_SECRET": "s", "DRY_RUN": "true", "PROFILES_FILE": path]
        let app = try Application.build(
            configuration: try Configuration(environment: environment, files: files),
            upstreams: .environment(environment, files: files),
            logger: LogCapture().logger(),
            serverConfiguration: .make()
        )
        let task = Task { try await app.server.run() }
        defer { app.server.shutdown() }
        let reloader = try #require(app.profilesReloader)
        files.set(path, "profiles:\n  - name: a\n    match: self-hosted\n    mode: vm\n")
        reloader.check()
        let ready = try await client(app.server.port) { try $0.request("GET", "/ready") }
        #expect(ready.status == 200)
        #expect(
            ready.text.hasSuffix(
                "\nwarning: PROFILES_FILE refused, the last good profiles serve: profiles[0].mode: 'vm' is not a mode:"
                    + " one of standard, userns, dind, dind-rootless, kubernetes (line 4)\n"
            )
        )
        app.server.shutdown()
        try await task.value
    }
}
