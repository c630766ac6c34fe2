import Foundation
import Testing

@testable import HTTPServer
@testable import Observability
@testable import Runners
@testable import Support
@testable import TestSupport
@testable import Webhook

/// A delivery over the credential's content-creating budget: answered 202 `deferred`, counted, logged with the
/// reason; its repository is still recorded for the reconciler, which provisions the job.
@Suite struct DeferredDeliveryTests {
    @Test func answers202DeferredCountsAndLogsTheReason() async throws {
        let metrics = Metrics()
        let logs = LogCapture()
        let noted = Notes()
        let handler = WebhookHandler(
            verifier: SignatureVerifier(secrets: [Secret(Fixtures.secret)]),
            matcher: .selfHosted,
            deliveries: DeliveryLog(),
            provisioner: RecordingProvisioner(.deferred("content-creating requests: 80 a minute spent")),
            metrics: metrics,
            logger: logs.logger(),
            onVerifiedRepository: { owner, repo in noted.append("repo \(owner)/\(repo)") }
        )
        var json =
            try JSONSerialization.jsonObject(with: Data(try Fixtures.bytes("github/workflow_job.queued.payload.json")))
            as! [String: Any]
        var job = json["workflow_job"] as! [String: Any]
        job["labels"] = ["self-hosted"]
        json["workflow_job"] = job
        let body = Array(try JSONSerialization.data(withJSONObject: json))
        let response = await handler.handle(
            HTTPRequest(
                method: "POST",
                target: "/webhook",
                headers: HTTPHeaders(
                    deliveryHeaders(event: "workflow_job", body: body).map { (name: $0.0, value: $0.1) }
                ),
                body: body
            )
        )
        #expect(response.status == 202)
        let answer = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        #expect(answer?["outcome"] as? String == "deferred")
        let exposition = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(exposition.contains(#"webhook_outcomes_total{outcome="deferred"} 1"#))
        #expect(logs.text.contains("delivery deferred; the reconciler provisions the job"))
        #expect(logs.text.contains("80 a minute spent"))
        #expect(noted.all == ["repo Octocoders/Hello-World"])
    }
}
