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
            onVerifiedHook: { type, id, owner, repo, repositoryID in
                noted.append("\(type ?? "-") \(id ?? "-") \(owner)/\(repo) \(repositoryID.map(String.init) ?? "-")")
            }
        )
    }

    func delivery(
        event: String = "workflow_job",
        secret: String = Fixtures.secret,
        id: String = "d-\(Int.random(in: 0..<1_000_000_000))",
        job: Int = 1
    ) throws -> HTTPRequest {
        let json: [String: Any] = [
            "action": "queued",
            "workflow_job": ["id": job, "run_id": 1, "name": "build", "labels": ["self-hosted"], "status": "queued"],
            "repository": ["id": 1_296_269, "name": "api", "full_name": "octo/api", "owner": ["login": "octo"]],
        ]
        let body = Array(try JSONSerialization.data(withJSONObject: json))
        let headers =
            deliveryHeaders(event: event, body: body, secret: secret, delivery: id) + [
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
        #expect(noted.all == ["repository 292430182 octo/api 1296269"])
    }

    @Test func aDeliveryFromOutsideTheAllowListNamesNoHook() async throws {
        _ = await handler(allowList: try RepositoryAllowList(owners: ["someone-else"], repositories: [])).handle(
            try delivery()
        )
        #expect(noted.all.isEmpty)
    }

    /// A runner Job made for a delivery the reconciler had GitHub redeliver is a lost job recovered by redelivery.
    @Test func countsALostJobRecoveredByRedelivery() async throws {
        let metrics = Metrics()
        let handler = WebhookHandler(
            verifier: SignatureVerifier(secrets: [Secret(Fixtures.secret)]),
            matcher: .selfHosted,
            deliveries: DeliveryLog(),
            provisioner: RecordingProvisioner(),
            metrics: metrics,
            logger: LogCapture().logger(),
            isRedelivery: { $0 == "asked-again" }
        )
        _ = await handler.handle(try delivery(id: "first-time", job: 1))
        let exposition = { String(decoding: metrics.exposition(), as: UTF8.self) }
        #expect(exposition().contains(#"reconciler_lost_jobs_recovered_total{how="redelivery"} 0"#))
        _ = await handler.handle(try delivery(id: "asked-again", job: 2))
        #expect(exposition().contains(#"reconciler_lost_jobs_recovered_total{how="redelivery"} 1"#))
        #expect(exposition().contains(#"webhook_outcomes_total{outcome="accepted"} 2"#))
    }
}
