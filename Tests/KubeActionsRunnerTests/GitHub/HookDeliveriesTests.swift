import Testing

@testable import GitHub
@testable import HTTPClient
@testable import Observability
@testable import Support
@testable import TestSupport

/// Listing a hook's deliveries and redelivering one, against answers shaped like GitHub's.
@Suite struct HookDeliveriesTests {
    static let base = "https://api.github.com"

    /// Two deliveries of one GUID, as GitHub lists them (newest first): the redelivery succeeded.
    static let page = """
        [
          {"id": 12, "guid": "0b989ba4-242f-11e5-81e1-c7b6966d2516", "delivered_at": "2023-11-14T22:20:00Z",
           "redelivery": true, "duration": 0.27, "status": "OK", "status_code": 200, "event": "workflow_job",
           "action": "queued", "installation_id": null, "repository_id": 79929171, "throttled_at": null},
          {"id": 11, "guid": "0b989ba4-242f-11e5-81e1-c7b6966d2516", "delivered_at": "2023-11-14T22:13:20Z",
           "redelivery": false, "duration": 10.0, "status": "Invalid HTTP Response: 503", "status_code": 503,
           "event": "workflow_job", "action": "queued", "installation_id": 7, "repository_id": 79929171}
        ]
        """

    func client(_ transport: RoutingTransport, credentials: (any GitHubCredentials)? = nil) -> GitHubClient {
        GitHubClient(
            configuration: .init(baseURL: Self.base, credentials: credentials ?? GitHubTokens(Secret("ghp_secret"))),
            transport: transport,
            metrics: Metrics(),
            logger: LogCapture().logger(),
            epochSeconds: { 1_700_000_000 }
        )
    }

    @Test func listsARepositoryHooksDeliveriesAndItsNextCursor() async throws {
        let transport = RoutingTransport { _ in
            .json(
                200,
                Self.page,
                headers: [
                    (
                        "link",
                        #"<\#(Self.base)/repos/octo/api/hooks/292430182/deliveries?per_page=2&cursor=v1_11>; rel="next""#
                    )
                ]
            )
        }
        let page = try await client(transport).hookDeliveries(
            .repository(owner: "octo", repo: "api", id: 292_430_182),
            perPage: 2,
            cursor: nil
        )
        #expect(transport.requests.map(\.url) == ["\(Self.base)/repos/octo/api/hooks/292430182/deliveries?per_page=2"])
        #expect(transport.requests.first?.method == "GET")
        #expect(page.nextCursor == "v1_11")
        #expect(page.deliveries.map(\.id) == [12, 11])
        #expect(page.deliveries.map(\.succeeded) == [true, false])
        #expect(page.deliveries[1].statusCode == 503 && page.deliveries[1].installationID == 7)
        #expect(page.deliveries[0].redelivery && page.deliveries[0].action == "queued")
    }

    @Test func readsTheNextPageFromItsCursorAndStopsWithoutALink() async throws {
        let transport = RoutingTransport { _ in .json(200, "[]") }
        let page = try await client(transport).hookDeliveries(
            .organization("octo", id: 5),
            perPage: 500,
            cursor: "v1_11"
        )
        #expect(
            transport.requests.map(\.url) == ["\(Self.base)/orgs/octo/hooks/5/deliveries?per_page=100&cursor=v1_11"]
        )
        #expect(page == HookDeliveryPage(deliveries: [], nextCursor: nil))
    }

    @Test func redeliversWithAPostThatGitHubAnswers202() async throws {
        let transport = RoutingTransport { _ in .json(202, "{}") }
        let github = client(transport)
        try await github.redeliver(.repository(owner: "octo", repo: "api", id: 9), deliveryID: 11)
        try await github.redeliver(.organization("octo", id: 5), deliveryID: 12)
        #expect(
            transport.requests.map { "\($0.method) \($0.url)" } == [
                "POST \(Self.base)/repos/octo/api/hooks/9/deliveries/11/attempts",
                "POST \(Self.base)/orgs/octo/hooks/5/deliveries/12/attempts",
            ]
        )
    }

    /// Without admin access to the hook GitHub answers 404 (or 403): the caller learns which.
    @Test func aMissingPermissionIsAForbiddenOrNotFoundError() async throws {
        let transport = RoutingTransport { _ in .json(404, #"{"message": "Not Found"}"#) }
        await #expect(throws: GitHubAPIError.self) {
            _ = try await client(transport).hookDeliveries(.organization("octo", id: 5), perPage: 100, cursor: nil)
        }
        do {
            _ = try await client(transport).hookDeliveries(.organization("octo", id: 5), perPage: 100, cursor: nil)
        } catch {
            #expect(error.kind == .notFound)
            #expect(error.endpoint == "GET /orgs/{org}/hooks/{hook_id}/deliveries")
        }
    }

    /// The App's hook is read with the App's JWT, never an installation token; with a token it cannot be read.
    @Test func readsTheAppsHookWithItsJWT() async throws {
        let transport = RoutingTransport { request in
            request.url.hasPrefix("\(Self.base)/app/hook/deliveries") ? .json(200, Self.page) : .json(404, "{}")
        }
        let credentials = try GitHubAppCredentials(
            configuration: .init(appID: "4242", privateKey: Secret(TestAppKey.pkcs1PEM)),
            transport: transport,
            metrics: nil,
            logger: LogCapture().logger(),
            clock: { 1_700_000_000 }
        )
        let github = client(transport, credentials: credentials)
        let page = try await github.hookDeliveries(.app, perPage: 100, cursor: nil)
        try await github.redeliver(.app, deliveryID: 11)
        #expect(page.deliveries.count == 2)
        #expect(
            transport.requests.map { "\($0.method) \($0.url)" } == [
                "GET \(Self.base)/app/hook/deliveries?per_page=100",
                "POST \(Self.base)/app/hook/deliveries/11/attempts",
            ]
        )
        #expect(transport.requests.allSatisfy { $0.header("Authorization")?.hasPrefix("Bearer eyJ") == true })

        do {
            _ = try await client(RoutingTransport { _ in .json(200, "[]") }).hookDeliveries(
                .app,
                perPage: 100,
                cursor: nil
            )
            Issue.record("a token read the App's hook")
        } catch {
            #expect(error.kind == .forbidden)
        }
    }

    @Test(
        arguments: [
            ("repository", "292430182", WebhookHook.repository(owner: "octo", repo: "api", id: 292_430_182)),
            ("organization", "5", .organization("octo", id: 5)),
            ("integration", "77", .app),
            ("business", "5", nil),
            ("repository", nil, nil),
            (nil, "5", nil),
        ] as [(String?, String?, WebhookHook?)]
    )
    func namesTheHookFromADeliverysHeaders(type: String?, id: String?, hook: WebhookHook?) {
        #expect(WebhookHook(targetType: type, hookID: id, owner: "octo", repo: "api") == hook)
    }
}
