import Foundation
import Testing

@testable import GitHub
@testable import HTTPClient
@testable import HTTPServer
@testable import Observability
@testable import Support
@testable import TestSupport

/// A GitHub App's whole path over real sockets: the client and the App's credentials on libcurl, against the
/// project's own HTTP server playing GHES under `/api/v3` (`MiniGitHub`: the JWT verified with the App's public
/// key, installation tokens with an expiry, organization runners).
@Suite struct GitHubAppLoopbackTests {
    @Test func registersAnOrganizationRunnerOnGHESAsAnApp() async throws {
        let github = MiniGitHub(publicKey: TestAppKey.privateKey.publicKey, prefix: "/api/v3")
        github.install(on: "octo-org", id: 42)
        let handler: HTTPServer.Handler = { request in
            let answer = await github.answer(
                method: request.method,
                target: request.target,
                authorization: request.headers["Authorization"]
            )
            return HTTPResponse(status: answer.status, headers: answer.headers, body: answer.body)
        }
        let logs = LogCapture()
        try await withServer(handler: handler) { server in
            let transport = CurlTransport()
            defer { transport.shutdown() }
            let baseURL = "http://127.0.0.1:\(server.port)/api/v3"
            let clock: @Sendable () -> Double = { github.now.withLock { $0 } }
            let credentials = try GitHubAppCredentials(
                configuration: .init(
                    appID: MiniGitHub.appID,
                    privateKey: Secret(TestAppKey.pkcs8PEM),
                    baseURL: baseURL
                ),
                transport: transport,
                metrics: nil,
                logger: logs.logger(),
                clock: clock
            )
            let client = GitHubClient(
                configuration: .init(baseURL: baseURL, credentials: credentials),
                transport: transport,
                metrics: nil,
                logger: logs.logger(),
                epochSeconds: clock
            )
            let group = try await client.runnerGroupID(named: "Kubernetes", organization: "octo-org")
            let jit = try await client.generateJITConfig(
                owner: "octo-org",
                repo: "api",
                scope: .organization,
                JITConfigRequest(name: "runner-1-abcde", runnerGroupID: group, labels: ["self-hosted"])
            )
            #expect(group == 3 && jit.runnerID == 23 && jit.encodedConfig.value == "jit-for-octo-org")
            #expect(github.exchanges == 1 && github.state.withLock { $0.rejectedJWTs }.isEmpty)
            #expect(client.rateLimitRemaining(owner: "octo-org") == 4998)
            #expect(await client.checkCredentials(scope: .organization).contains { $0.severity == .error } == false)
        }
        #expect(!logs.text.contains("ghs_") && !logs.text.contains("PRIVATE KEY"))
    }
}
