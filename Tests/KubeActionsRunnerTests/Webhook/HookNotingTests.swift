import Foundation
import Testing

@testable import HTTPServer
@testable import Observability
@testable import Runners
@testable import Support
@testable import TestSupport
@testable import Webhook

/// The hook a delivery came through is told only for verified, allowed `workflow_job` deliveries.
@Suite struct HookNotingTests {
    let noted = Notes()

    func handler(allowList: RepositoryAllowList = .everyone) -> WebhookHandler {
        let noted = self.noted
        return WebhookHandler(
            verifier: SignatureVerifier(secrets: [Secret(Fixtures.secret)]),
            matcher: .selfHosted,
            deliveries: DeliveryLog(),
            provisioner: RecordingProvisioner(),
            metrics: Metrics(),
            logger: LogCapture().logger(),
            allowList: allowList,
            onVerifiedHook: { type, id, owner, repo in
                noted.append("\(type ?? "-") \(id ?? "-") \(owner)/\(repo)")
            }
        )
    }

    func delivery(event: String = "workflow_job", secret: String = Fixtures.secret) throws -> HTTPRequest {
        let json: [String: Any] = [
            "action": "queued",
            "workflow_job": ["id": 1, "run_id": 1, "name": "build", "labels": ["self-hosted"], "status": "queued"],
            "repository": ["name": "api", "full_name": "octo/api", "owner": ["login": "octo"]],
        ]
        let body = Array(try JSONSerialization.data(withJSONObject: json))
        let headers =
            deliveryHeaders(event: event, body: body, secret: secret) + [
                ("X-GitHub-Hook-ID", "292430182"), ("X-GitHub-Hook-Installation-Target-Type", "repository"),
                ("X-GitHub-Hook-Installation-Target-ID", "79929171"),
            ]
        return HTTPRequest(
            method: "POST",
            target: "/webhook",
            headers: HTTPHeaders(headers.map { (name: $0.0, value: $0.1) }),
            body: body
        )
    }

    @Test func notesTheHookOfAVerifiedDeliveryOnly() async throws {
        let handler = handler()
        _ = await handler.handle(try delivery(secret: "not the secret"))
        _ = await handler.handle(try delivery(event: "ping"))
        #expect(noted.all.isEmpty)
        _ = await handler.handle(try delivery())
        #expect(noted.all == ["repository 292430182 octo/api"])
    }

    @Test func aDeliveryFromOutsideTheAllowListNamesNoHook() async throws {
        _ = await handler(allowList: try RepositoryAllowList(owners: ["someone-else"], repositories: [])).handle(
            try delivery()
        )
        #expect(noted.all.isEmpty)
    }
}
