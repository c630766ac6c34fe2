import Foundation
import Testing

@testable import GitHub
@testable import HTTPClient
@testable import Observability
@testable import Support
@testable import TestSupport

/// The start-up check against answers shaped like GitHub's: status codes, `X-OAuth-Scopes`,
/// `X-Accepted-GitHub-Permissions`, error bodies, and the documented App and installation objects
/// (`Fixtures/github/api/app.get.200.json`, `installation.get.200.json`).
@Suite struct GitHubCredentialCheckTests {
    static let repositories = [
        GitHubCredentialCheck.Repository(owner: "octo-org", name: "api"),
        GitHubCredentialCheck.Repository(owner: "hubot", name: "web"),
    ]

    /// Answers by path (the query dropped); anything else is GitHub's 404.
    static func transport(_ answers: [String: HTTPClientResponse]) -> RoutingTransport {
        RoutingTransport { request in
            let path = String(request.url.dropFirst("https://api.github.com".count).prefix { $0 != "?" })
            return answers[path] ?? .json(404, #"{"message":"Not Found","status":"404"}"#)
        }
    }

    static func client(_ credentials: any GitHubCredentials, _ transport: RoutingTransport) -> GitHubClient {
        GitHubClient(
            configuration: .init(baseURL: "https://api.github.com", credentials: credentials),
            transport: transport,
            metrics: nil,
            logger: LogCapture().logger()
        )
    }

    static let ok = HTTPClientResponse.json(200, #"{"total_count":0,"runners":[]}"#)

    // MARK: - Tokens

    @Test func findsNothingWrongWithAClassicTokenThatHasTheRepoScope() async {
        let transport = Self.transport([
            "/user": .json(200, #"{"login":"octocat","id":1}"#, headers: [("X-OAuth-Scopes", "repo, workflow")]),
            "/repos/octo-org/api/actions/runners": Self.ok, "/repos/hubot/web/actions/runners": Self.ok,
        ])
        let findings = await Self.client(GitHubTokens(Secret("ghp_classic")), transport)
            .checkCredentials(scope: .repository, repositories: Self.repositories)
        #expect(findings == [])
        #expect(
            transport.requests.map(\.url) == [
                "https://api.github.com/user",
                "https://api.github.com/repos/octo-org/api/actions/runners?per_page=1",
                "https://api.github.com/repos/hubot/web/actions/runners?per_page=1",
            ]
        )
        #expect(transport.requests.allSatisfy { $0.method == "GET" })
    }

    @Test func reportsARevokedToken() async {
        let transport = Self.transport([
            "/user": .json(
                401,
                #"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}"#
            )
        ])
        let findings = await Self.client(GitHubTokens(Secret("ghp_revoked")), transport)
            .checkCredentials(scope: .repository, repositories: Self.repositories)
        #expect(
            findings == [
                GitHubCredentialFinding(
                    .error,
                    subject: "GITHUB_TOKEN",
                    "GitHub rejects it (401 Bad credentials): the token is wrong, expired or revoked"
                )
            ]
        )
        #expect(transport.requests.count == 1)
    }

    @Test(arguments: [
        (
            RunnerScope.repository, "read:org", [GitHubCredentialFinding.Severity.error],
            "lacks the repo scope (has: read:org)"
        ),
        (.repository, "public_repo", [.warning], "public_repo scope only"),
        (.organization, "repo", [.error], "lacks the admin:org scope (has: repo)"),
        (.organization, "admin:org", [.warning], "lacks the repo scope: jobs of private repositories"),
        (.organization, "admin:org, repo", [], ""),
    ])
    func readsAClassicTokensScopes(
        scope: RunnerScope,
        scopes: String,
        severities: [GitHubCredentialFinding.Severity],
        message: String
    ) async {
        let transport = Self.transport([
            "/user": .json(200, #"{"login":"octocat"}"#, headers: [("X-OAuth-Scopes", scopes)]),
            "/repos/octo-org/api/actions/runners": Self.ok, "/orgs/octo-org/actions/runners": Self.ok,
        ])
        let findings = await Self.client(GitHubTokens(Secret("ghp_classic")), transport)
            .checkCredentials(scope: scope, repositories: [Self.repositories[0]])
        #expect(findings.map(\.severity) == severities)
        #expect(findings.allSatisfy { $0.message.contains(message) })
    }

    /// A fine-grained token sends no `X-OAuth-Scopes`: a read of each repository's runners shows what it lacks,
    /// with the permission GitHub names in `X-Accepted-GitHub-Permissions`.
    @Test func probesAFineGrainedTokensRepositories() async {
        let transport = Self.transport([
            "/user": .json(200, #"{"login":"octocat"}"#),
            "/repos/octo-org/api/actions/runners": .json(
                403,
                #"{"message":"Resource not accessible by personal access token","documentation_url":"https://docs.github.com/rest/actions/self-hosted-runners","status":"403"}"#,
                headers: [("X-Accepted-GitHub-Permissions", "administration=read")]
            ),
        ])
        let findings = await Self.client(GitHubTokens(Secret("github_pat_fine")), transport)
            .checkCredentials(scope: .repository, repositories: Self.repositories)
        #expect(findings.count == 2)
        #expect(findings[0].severity == .error && findings[0].subject == "GITHUB_TOKEN")
        #expect(
            findings[0].message
                == "cannot read the runners of octo-org/api (403 Resource not accessible by personal access token); it needs administration=read (GitHub says)"
        )
        #expect(
            findings[1].message.hasPrefix(
                "cannot read the runners of hubot/web (404 Not Found); it needs \"Administration: write\""
            )
        )
        #expect(!findings.description.contains("github_pat_fine"))
    }

    /// Each owner's token is probed on that owner's repositories; the default token on the others.
    @Test func checksEachOwnersTokenOnItsOwnRepositories() async {
        let transport = RoutingTransport { request in
            let token = request.header("Authorization") ?? ""
            if request.url.hasSuffix("/user") { return .json(200, "{}", headers: [("X-OAuth-Scopes", "repo")]) }
            let allowed =
                (token == "Bearer ghp_octo" && request.url.contains("/repos/octo-org/"))
                || (token == "Bearer ghp_default" && request.url.contains("/repos/hubot/"))
            return allowed ? Self.ok : .json(404, #"{"message":"Not Found"}"#)
        }
        let tokens = GitHubTokens(
            defaultToken: Secret("ghp_default"),
            ownerTokens: [.init(owner: "octo-org", token: Secret("ghp_octo"))]
        )
        #expect(
            await Self.client(tokens, transport).checkCredentials(scope: .repository, repositories: Self.repositories)
                == []
        )
        #expect(transport.requests.count == 4)
    }

    /// With the redelivery of failed deliveries on, whether the token may read webhook deliveries is said at start:
    /// a classic token by its scopes (no call), a fine-grained one by a read of its first repository's hooks.
    @Test(arguments: [
        ("repo", true), ("repo, write:repo_hook", false), ("repo, admin:org_hook", false),
        ("repo, read:repo_hook", false),
    ])
    func saysAtStartWhenAClassicTokenCannotReadDeliveries(scopes: String, warned: Bool) async {
        let transport = Self.transport([
            "/user": .json(200, #"{"login":"octocat"}"#, headers: [("X-OAuth-Scopes", scopes)]),
            "/repos/octo-org/api/actions/runners": Self.ok,
        ])
        let findings = await Self.client(GitHubTokens(Secret("ghp_classic")), transport)
            .checkCredentials(scope: .repository, repositories: [Self.repositories[0]], deliveries: true)
        #expect(findings.map(\.severity) == (warned ? [.warning] : []))
        if warned {
            #expect(findings[0].message.hasPrefix("cannot read webhook deliveries (needs the write:repo_hook scope"))
            #expect(findings[0].message.contains("lost jobs are found by polling only"))
        }
        #expect(!transport.requests.contains { $0.url.contains("/hooks") })
    }

    @Test func saysAtStartWhenAFineGrainedTokenCannotReadDeliveries() async {
        let refused = HTTPClientResponse.json(
            403,
            #"{"message":"Resource not accessible by personal access token","documentation_url":"https://docs.github.com/rest/repos/webhooks","status":"403"}"#,
            headers: [("X-Accepted-GitHub-Permissions", "repository_hooks=read")]
        )
        let transport = Self.transport([
            "/user": .json(200, #"{"login":"octocat"}"#),
            "/repos/octo-org/api/actions/runners": Self.ok, "/repos/hubot/web/actions/runners": Self.ok,
            "/repos/octo-org/api/hooks": refused,
        ])
        let client = Self.client(GitHubTokens(Secret("github_pat_fine")), transport)
        let findings = await client.checkCredentials(
            scope: .repository,
            repositories: Self.repositories,
            deliveries: true
        )
        #expect(
            findings == [
                GitHubCredentialFinding(
                    .warning,
                    subject: "GITHUB_TOKEN",
                    "cannot read the webhooks of octo-org/api (403 Resource not accessible by personal access token); it needs repository_hooks=read (GitHub says): failed deliveries are not redelivered and lost jobs are found by polling only (slower with many repositories)"
                )
            ]
        )
        #expect(transport.requests.last?.url == "https://api.github.com/repos/octo-org/api/hooks?per_page=1")
        #expect(transport.requests.allSatisfy { $0.method == "GET" })
        // Without the redelivery, the hooks are not read.
        let quiet = await client.checkCredentials(scope: .repository, repositories: Self.repositories)
        #expect(quiet.isEmpty)
    }

    @Test func refusesAnInstallationTokenAsTheToken() async {
        let transport = Self.transport([:])
        let findings = await Self.client(GitHubTokens(Secret("ghs_16C7e42F292c6912E7710c838347Ae178B4a")), transport)
            .checkCredentials(scope: .repository)
        #expect(findings.map(\.severity) == [.error] && findings[0].message.contains("GITHUB_APP_ID"))
        #expect(transport.requests.isEmpty && !findings.description.contains("ghs_16C7"))
    }

    @Test func saysWhatItCouldNotCheck() async {
        let transport = RecordingTransport()
        transport.enqueue(HTTPTransportError(kind: .timeout, message: "Timeout was reached"))
        let github = GitHubClient(
            configuration: .init(baseURL: "https://api.github.com", token: Secret("ghp_x")),
            transport: transport,
            metrics: nil,
            logger: LogCapture().logger()
        )
        let findings = await github.checkCredentials(scope: .repository)
        #expect(findings.map(\.severity) == [.warning] && findings[0].message.contains("not checked"))
    }

    // MARK: - GitHub App

    /// The documented installation object with this test's account, permissions and id.
    static func installation(
        id: Int,
        login: String,
        type: String = "Organization",
        permissions: [String: String],
        suspended: Bool = false
    ) throws -> [String: Any] {
        var object =
            try JSONSerialization.jsonObject(with: Data(try Fixtures.bytes("github/api/installation.get.200.json")))
            as! [String: Any]
        var account = object["account"] as! [String: Any]
        account["login"] = login
        account["type"] = type
        object["account"] = account
        object["id"] = id
        object["permissions"] = permissions
        if suspended { object["suspended_at"] = "2026-11-30T10:00:00Z" }
        return object
    }

    func app(
        _ installations: [[String: Any]],
        appAnswer: HTTPClientResponse? = nil
    ) throws -> (GitHubAppCredentials, RoutingTransport) {
        let list = String(decoding: try JSONSerialization.data(withJSONObject: installations), as: UTF8.self)
        let transport = Self.transport([
            "/app": try appAnswer ?? .json(200, try Fixtures.text("github/api/app.get.200.json")),
            "/app/installations": .json(200, list),
        ])
        let credentials = try GitHubAppCredentials(
            configuration: .init(appID: "1", privateKey: Secret(TestAppKey.pkcs1PEM)),
            transport: transport,
            metrics: nil,
            logger: LogCapture().logger()
        )
        return (credentials, transport)
    }

    @Test func findsNothingWrongWithAnAppThatMayRegisterRunnersEverywhereItIsInstalled() async throws {
        let (credentials, transport) = try app([
            try Self.installation(
                id: 42,
                login: "octo-org",
                permissions: ["administration": "write", "actions": "read", "metadata": "read"]
            ),
            try Self.installation(
                id: 7,
                login: "hubot",
                type: "User",
                permissions: ["administration": "write", "actions": "write"]
            ),
        ])
        let findings = await Self.client(credentials, transport)
            .checkCredentials(scope: .repository, owners: ["Octo-Org", "hubot"])
        #expect(findings == [])
        #expect(
            transport.requests.map(\.url) == [
                "https://api.github.com/app", "https://api.github.com/app/installations?per_page=100",
            ]
        )
        #expect(transport.requests.allSatisfy { $0.header("Authorization")?.hasPrefix("Bearer ey") == true })
    }

    @Test func explainsWhatEachInstallationLacks() async throws {
        let (credentials, transport) = try app([
            try Self.installation(
                id: 42,
                login: "octo-org",
                permissions: ["checks": "write", "metadata": "read", "contents": "read"]
            ),
            try Self.installation(
                id: 9,
                login: "paused-org",
                permissions: ["administration": "write"],
                suspended: true
            ),
        ])
        let findings = await Self.client(credentials, transport)
            .checkCredentials(scope: .repository, owners: ["octo-org", "elsewhere"])
        #expect(
            findings == [
                GitHubCredentialFinding(
                    .error,
                    subject: "GitHub App installation 42 (octo-org)",
                    "lacks Administration: write, Actions: read (has: checks=write, contents=read, metadata=read); grant it in the App's settings, then have octo-org accept the new permissions"
                ),
                GitHubCredentialFinding(
                    .error,
                    subject: "GitHub App installation 9 (paused-org)",
                    "is suspended: no token can be issued for it"
                ),
                GitHubCredentialFinding(
                    .error,
                    subject: "GitHub App 1",
                    "is not installed on elsewhere: its jobs cannot get runners"
                ),
            ]
        )
    }

    @Test func needsOrganizationRunnerPermissionsOnOrganizationsForOrganizationRunners() async throws {
        let (credentials, transport) = try app([
            try Self.installation(
                id: 42,
                login: "octo-org",
                permissions: ["administration": "write", "actions": "read"]
            ),
            try Self.installation(
                id: 43,
                login: "good-org",
                permissions: ["organization_self_hosted_runners": "write", "actions": "read"]
            ),
            try Self.installation(
                id: 7,
                login: "hubot",
                type: "User",
                permissions: ["administration": "write", "actions": "read"]
            ),
        ])
        let findings = await Self.client(credentials, transport).checkCredentials(scope: .organization)
        #expect(
            findings.map(\.subject) == ["GitHub App installation 42 (octo-org)", "GitHub App installation 7 (hubot)"]
        )
        #expect(findings[0].message.hasPrefix("lacks Self-hosted runners (organization): write"))
        #expect(findings[1].message.contains("user account"))
    }

    @Test func reportsAnAppGitHubDoesNotAcceptOrThatIsInstalledNowhere() async throws {
        let (rejected, transport) = try app(
            [],
            appAnswer: .json(
                401,
                #"{"message":"A JSON web token could not be decoded","documentation_url":"https://docs.github.com/rest","status":"401"}"#
            )
        )
        let findings = await Self.client(rejected, transport).checkCredentials(scope: .repository)
        #expect(findings.count == 1 && findings[0].severity == .error && findings[0].subject == "GitHub App 1")
        #expect(findings[0].message.contains("A JSON web token could not be decoded"))
        #expect(findings[0].message.contains("GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY"))

        let (nowhere, transport2) = try app([])
        let none = await Self.client(nowhere, transport2).checkCredentials(scope: .repository)
        #expect(
            none.map(\.message) == [
                "is installed on no account: install it on the organizations or users whose jobs it should run"
            ]
        )
    }
}
