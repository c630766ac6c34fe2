import HTTPClient
import HTTPServer
import Logging
import Observability
import Runners
import Support
import Webhook

/// `kube-actions-runner demo`: the real server in dry-run mode on a free loopback port, one real signed
/// `workflow_job` delivery over HTTP, and the Job and Secret that would have been created.
///
/// Needs no cluster, no GitHub token and no files. `RUNNER_MODE`, `RUNNER_IMAGE`, `DIND_IMAGE`, `DIND_MTU`,
/// `NAMESPACE`, `LABEL_MATCHERS` and `JOB_TTL_SECONDS` from the environment are honoured.
package enum Demo {
    package static func run(
        environment: [String: String],
        output: @escaping @Sendable (String) -> Void = { print($0) }
    ) async throws
        -> Bool
    {
        var generator = SystemRandomNumberGenerator()
        let secret = Hex.encode((0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) })
        var env: [String: String] = [:]
        for key in [
            "RUNNER_MODE", "RUNNER_IMAGE", "DIND_IMAGE", "DIND_MTU", "NAMESPACE", "LABEL_MATCHERS", "JOB_TTL_SECONDS",
        ] {
            env[key] = environment[key]
        }
        env["LABEL_MATCHERS"] = env["LABEL_MATCHERS"] ?? "ubuntu-latest"  // the bundled payload's runs-on
        env["WEBHOOK_SECRET"] = secret
        env["DRY_RUN"] = "true"
        let configuration = try Configuration(environment: env, files: InMemoryFiles())

        let logger = Logger(label: "kube-actions-runner") { label in
            JSONLogHandler(label: label, level: .info, format: .json) { line in
                output("  log | " + line.droppingTrailingNewlines())
            }
        }
        var serverConfiguration = HTTPServer.Configuration()
        serverConfiguration.host = "127.0.0.1"
        serverConfiguration.port = 0
        // The service's own graph, over in-memory upstreams because the configuration says DRY_RUN.
        let app = try Application.build(
            configuration: configuration,
            upstreams: .environment([:], files: InMemoryFiles()),
            logger: logger,
            serverConfiguration: serverConfiguration
        )
        guard let cluster = app.dryRunCluster else { return false }
        let server = Task { try await app.server.run() }
        defer { app.server.shutdown() }

        let port = app.server.port
        output("kube-actions-runner \(KubeActionsRunnerVersion.current) demo (dry run: no GitHub, no cluster)")
        output(
            "server listening on 127.0.0.1:\(port), mode \(configuration.runnerMode), label matchers '\(configuration.labelMatcher)'"
        )
        output("")

        let body = Array((DemoPayload.workflowJobQueued + "\n").utf8)  // the fixture's exact bytes
        let headers = [
            ("Content-Type", "application/json"),
            ("User-Agent", "GitHub-Hookshot/demo"),
            ("X-GitHub-Event", "workflow_job"),
            ("X-GitHub-Delivery", "00000000-0000-4000-8000-000000000001"),
            ("X-Hub-Signature-256", SignatureVerifier.sign(body, secret: configuration.webhookSecret)),
        ]
        // The deliveries go over a real loopback connection, through the client the service uses upstream.
        let client = CurlTransport()
        defer { client.shutdown() }
        func post(_ headers: [(String, String)]) async throws(HTTPTransportError) -> (status: Int, text: String) {
            let response = try await client.send(
                HTTPClientRequest(
                    method: "POST",
                    url: "http://127.0.0.1:\(port)/webhook",
                    headers: headers.map { (name: $0.0, value: $0.1) },
                    body: body,
                    timeout: .seconds(10)
                )
            )
            return (response.status, String(decoding: response.body, as: UTF8.self))
        }
        let first = try await post(headers)
        let second = try await post(headers)
        let unsigned = try await post(headers.filter { $0.0 != "X-Hub-Signature-256" })
        output("POST /webhook  workflow_job queued (job 289782451, \(body.count) bytes, signed)")
        output("  -> \(first.status) \(first.text.droppingTrailingNewlines())")
        output("POST /webhook  the same delivery again (GitHub's redelivery keeps X-GitHub-Delivery)")
        output("  -> \(second.status) \(second.text.droppingTrailingNewlines())")
        output("POST /webhook  without a signature")
        output("  -> \(unsigned.status) \(unsigned.text.droppingTrailingNewlines())")
        output("")

        output("What the provisioning flow sent, in order (GET job ∥ create Job, then JIT config, then Secret):")
        for object in cluster.created {
            let path =
                object.kind == "Job"
                ? "/apis/batch/v1/namespaces/\(configuration.namespace)/jobs"
                : "/api/v1/namespaces/\(configuration.namespace)/secrets"
            output("")
            output("POST \(path)" + (object.kind == "Secret" ? "   (owned by the Job; JIT config redacted)" : ""))
            output(redactingJITConfig(object.manifest).rendered(pretty: true))
        }
        app.server.shutdown()
        try await server.value
        return first.status == 200 && second.status == 200 && unsigned.status == 401
    }
}

/// The manifest with the Secret's JIT config replaced, for display.
func redactingJITConfig(_ manifest: JSONValue) -> JSONValue {
    guard case .object(let members) = manifest else { return manifest }
    return .object(
        members.map { key, value in
            let redacted: JSONValue = .object([
                (RunnerJob.secretKey, .string(Render.redactedJITConfig))
            ])
            return key == "stringData" ? (key, redacted) : (key, value)
        }
    )
}
