import Foundation
import Synchronization
import Testing
import _CryptoExtras

@testable import GitHub
@testable import HTTPClient
@testable import Observability
@testable import Support
@testable import TestSupport

@Suite struct GitHubAppCredentialsTests {
    let github = MiniGitHub(publicKey: TestAppKey.privateKey.publicKey)
    let logs = LogCapture()
    let metrics = Metrics()

    var transport: RoutingTransport {
        let github = self.github
        return RoutingTransport { request in
            await github.answer(
                method: request.method,
                target: String(request.url.dropFirst("https://api.github.com".count)),
                authorization: request.header("Authorization")
            )
        }
    }

    func credentials(
        transport: RoutingTransport,
        key: String = TestAppKey.pkcs1PEM
    ) throws -> GitHubAppCredentials {
        let github = self.github
        return try GitHubAppCredentials(
            configuration: .init(appID: MiniGitHub.appID, privateKey: Secret(key)),
            transport: transport,
            metrics: metrics,
            logger: logs.logger(),
            clock: { github.now.withLock { $0 } }
        )
    }

    func client(_ credentials: GitHubAppCredentials, transport: RoutingTransport) -> GitHubClient {
        let github = self.github
        return GitHubClient(
            configuration: .init(baseURL: "https://api.github.com", credentials: credentials),
            transport: transport,
            metrics: metrics,
            logger: logs.logger(),
            epochSeconds: { github.now.withLock { $0 } }
        )
    }

    /// RS256 is PKCS#1 v1.5 with SHA-256: the signature verifies with that padding and not with PSS (swift-crypto's
    /// default); the claims are GitHub's: iat a minute back, exp nine minutes ahead, iss the App id as a number.
    @Test(arguments: [TestAppKey.pkcs1PEM, TestAppKey.pkcs8PEM])
    func signsAnRS256JWTWithGitHubsClaims(pem: String) throws {
        let key = try GitHubAppKey(pem: Secret(pem))
        let jwt = try key.jwt(issuer: "4242", now: 1_700_000_000.7).value
        let parts = jwt.split(separator: ".").map(String.init)
        #expect(parts.count == 3 && !jwt.contains("=") && !jwt.contains("+") && !jwt.contains("/"))
        let header = try #require(MiniGitHub.base64URLDecoded(parts[0]))
        #expect(String(decoding: header, as: UTF8.self) == #"{"alg":"RS256","typ":"JWT"}"#)
        let claims = try #require(MiniGitHub.base64URLDecoded(parts[1]))
        #expect(String(decoding: claims, as: UTF8.self) == #"{"iat":1699999940,"exp":1700000540,"iss":4242}"#)
        let signature = _RSA.Signing.RSASignature(
            rawRepresentation: try #require(MiniGitHub.base64URLDecoded(parts[2]))
        )
        let signed = Array((parts[0] + "." + parts[1]).utf8)
        let publicKey = TestAppKey.privateKey.publicKey
        #expect(publicKey.isValidSignature(signature, for: signed, padding: .insecurePKCS1v1_5))
        #expect(!publicKey.isValidSignature(signature, for: signed, padding: .PSS))
        // A client id is a string claim.
        let byClientID = try key.jwt(issuer: "Iv1.ab1112223334445c", now: 1_700_000_000).value
        let clientClaims = try #require(
            MiniGitHub.base64URLDecoded(byClientID.split(separator: ".").map(String.init)[1])
        )
        #expect(String(decoding: clientClaims, as: UTF8.self).hasSuffix(#""iss":"Iv1.ab1112223334445c"}"#))
    }

    @Test func readsBothPEMFormsAndAKeyWithEscapedNewlines() throws {
        #expect(TestAppKey.pkcs1PEM.hasPrefix("-----BEGIN RSA PRIVATE KEY-----"))
        #expect(TestAppKey.pkcs8PEM.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        let oneLine = TestAppKey.pkcs1PEM.replacingOccurrences(of: "\n", with: "\\n")
        #expect(throws: Never.self) { try GitHubAppKey(pem: Secret(oneLine)) }
    }

    @Test(arguments: [
        "not a key", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----\nAAAAsecretmaterial\n-----END RSA PRIVATE KEY-----",
    ])
    func refusesWhatIsNotAnRSAPrivateKeyWithoutShowingIt(pem: String) {
        #expect {
            try GitHubAppCredentials(
                configuration: .init(appID: "1", privateKey: Secret(pem)),
                transport: RecordingTransport(),
                metrics: nil,
                logger: LogCapture().logger()
            )
        } throws: { error in
            "\(error)".contains("GITHUB_APP_PRIVATE_KEY") && !"\(error)".contains("secretmaterial")
        }
        #expect(!"\(String(describing: try? GitHubAppKey(pem: Secret(TestAppKey.pkcs1PEM))))".contains("PRIVATE"))
    }

    /// A delivery's installation needs no look-up; its token is exchanged once, used, and kept until five minutes
    /// before it expires.
    @Test func exchangesTheDeliverysInstallationTokenOnceAndRefreshesItBeforeItExpires() async throws {
        github.install(on: "octo-org", id: 42)
        let transport = self.transport
        let credentials = try credentials(transport: transport)
        credentials.remember(installationID: 42, for: "octo-org")
        let client = client(credentials, transport: transport)

        _ = try await client.runners(owner: "octo-org", repo: "api")
        _ = try await client.runners(owner: "Octo-Org", repo: "web")
        #expect(github.exchanges == 1)
        #expect(transport.requests.map(\.method) == ["POST", "GET", "GET"])
        #expect(transport.requests[0].url == "https://api.github.com/app/installations/42/access_tokens")
        #expect(transport.requests[1].header("Authorization")?.hasPrefix("Bearer ghs_42_") == true)
        #expect(github.state.withLock { $0.claims.first } == #"{"iat":1699999940,"exp":1700000540,"iss":4242}"#)

        github.now.withLock { $0 += 3600 - 301 }  // five minutes and a second before expiry: still fresh
        _ = try await client.runners(owner: "octo-org", repo: "api")
        #expect(github.exchanges == 1)
        github.now.withLock { $0 += 2 }  // inside the last five minutes: replaced
        _ = try await client.runners(owner: "octo-org", repo: "api")
        #expect(github.exchanges == 2)

        #expect(!logs.text.contains("ghs_") && !logs.text.contains("PRIVATE KEY"))
        #expect(logs.text.contains("GitHub App installation token issued"))
    }

    /// However many calls need the token at once, it is exchanged once.
    @Test func exchangesOnceForManyWaitingCalls() async throws {
        github.install(on: "octo-org", id: 42)
        let (hold, release) = AsyncStream<Void>.makeStream()
        github.state.withLock { $0.holdExchanges = hold }
        let transport = self.transport
        let credentials = try credentials(transport: transport)
        credentials.remember(installationID: 42, for: "octo-org")
        let client = client(credentials, transport: transport)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<16 {
                group.addTask { _ = try await client.runners(owner: "octo-org", repo: "repo\(index)") }
            }
            try await waitUntil("every call waits for the one exchange") { credentials.tokens.waiting(for: 42) == 16 }
            release.yield()
            try await group.waitForAll()
        }
        #expect(github.exchanges == 1)
        #expect(transport.requests(endingWith: "/access_tokens").count == 1)
        #expect(transport.requests.count == 17)
    }

    /// Without a delivery, the installation is looked up: by repository when there is one, else organization, then
    /// user; a 401 on a cached token drops it and the call is retried once with a new one.
    @Test func looksUpInstallationsAndRetriesOnceWithAFreshTokenAfterA401() async throws {
        github.install(on: "octo-org", id: 42)
        github.install(on: "hubot", id: 7, type: "User")
        let transport = self.transport
        let credentials = try credentials(transport: transport)
        let client = client(credentials, transport: transport)

        _ = try await client.runners(owner: "octo-org", repo: "api")
        #expect(transport.requests.first?.url == "https://api.github.com/repos/octo-org/api/installation")
        #expect(try await client.runnerGroupID(named: "kubernetes", organization: "hubot") == 3)
        #expect(transport.requests(endingWith: "/orgs/hubot/installation").count == 1)
        #expect(transport.requests(endingWith: "/users/hubot/installation").count == 1)

        // GitHub revokes the token early: the call that meets the 401 gets a new token and succeeds.
        github.state.withLock { $0.tokens.removeAll() }
        let before = github.exchanges
        _ = try await client.runners(owner: "octo-org", repo: "api")
        #expect(github.exchanges == before + 1)
        #expect(logs.text.contains("retrying with a fresh one"))

        // A second 401 is the answer: no loop.
        github.state.withLock { $0.installations.removeAll { $0.id == 42 } }
        github.state.withLock { $0.tokens.removeAll() }
        let error = await #expect(throws: GitHubAPIError.self) {
            try await client.runners(owner: "octo-org", repo: "api")
        }
        // The installation is gone: its exchange says 404, and the owner is looked up again next time.
        #expect(error?.kind == .notFound && error?.message.contains("looked up again") == true)
        let missing = await #expect(throws: GitHubAPIError.self) {
            try await client.runners(owner: "octo-org", repo: "api")
        }
        #expect(missing?.message.contains("not installed on octo-org/api") == true)
    }

    /// Each installation has its own window: one exhausted installation does not pause another owner's calls.
    @Test func tracksRateLimitsPerInstallation() async throws {
        github.install(on: "octo-org", id: 42, remaining: 0)
        github.install(on: "hubot", id: 7, remaining: 100)
        let transport = self.transport
        let credentials = try credentials(transport: transport)
        let client = client(credentials, transport: transport)

        let limited = await #expect(throws: GitHubAPIError.self) {
            try await client.runners(owner: "octo-org", repo: "a")
        }
        #expect(limited?.kind == .rateLimited)
        _ = try await client.runners(owner: "hubot", repo: "b")
        let calls = transport.requests.count
        await #expect(throws: GitHubAPIError.self) { try await client.runners(owner: "octo-org", repo: "a") }
        #expect(transport.requests.count == calls)  // refused without a request
        _ = try await client.runners(owner: "hubot", repo: "b")
        #expect(client.rateLimitRemaining(owner: "hubot") == 98)
        #expect(client.rateLimitRemaining(owner: "octo-org") == -1)
        let exposition = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(exposition.contains(#"github_api_rate_limit_remaining{owner="hubot"} 98"#))
        #expect(exposition.contains(#"github_api_rate_limit_remaining{owner="octo-org"} -1"#))
    }

    /// A JWT GitHub refuses (another App's key, say) is an error that says what to check.
    @Test func explainsARejectedJWT() async throws {
        github.install(on: "octo-org", id: 42)
        let otherKey = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let transport = self.transport
        let credentials = try credentials(transport: transport, key: otherKey.pemRepresentation)
        let error = await #expect(throws: GitHubAPIError.self) {
            try await client(credentials, transport: transport).runners(owner: "octo-org", repo: "a")
        }
        #expect(error?.kind == .unauthorized && error?.message.contains("GITHUB_APP_PRIVATE_KEY") == true)
        #expect(github.state.withLock { $0.rejectedJWTs } == ["A JSON web token could not be decoded"])
    }
}
