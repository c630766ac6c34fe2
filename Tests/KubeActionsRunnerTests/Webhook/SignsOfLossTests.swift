import Foundation
import Synchronization
import Testing

@testable import HTTPServer
@testable import Observability
@testable import Runners
@testable import Support
@testable import TestSupport
@testable import Webhook

/// Which deliveries record their repository for the reconciler (a job this service runs), and which are signs
/// that a `queued` delivery was lost (a matching job in progress or completed that this process never saw queued).
@Suite struct SignsOfLossTests {
    let provisioner = RecordingProvisioner()
    let metrics = Metrics()
    let logs = LogCapture()
    let noted = Notes()
    let time = ManualClock()
    let memory: QueuedJobMemory

    init() {
        memory = QueuedJobMemory(capacity: 100, since: 1_800_000_000)
    }

    func handler() -> WebhookHandler {
        let noted = self.noted
        return WebhookHandler(
            verifier: SignatureVerifier(secrets: [Secret(Fixtures.secret)]),
            matcher: .selfHosted,
            deliveries: DeliveryLog(),
            provisioner: provisioner,
            metrics: metrics,
            logger: logs.logger(),
            onVerifiedRepository: { owner, repo in noted.append("repo \(owner)/\(repo)") },
            queuedJobs: memory,
            onSignOfLoss: { owner, repo in noted.append("loss \(owner)/\(repo)") }
        )
    }

    /// A `workflow_job` delivery of job `id` in octo/`repo`, queued at `queuedAt` (epoch seconds).
    func delivery(
        _ action: String,
        job id: Int64,
        repo: String = "api",
        labels: [String] = ["self-hosted"],
        runner: String? = nil,
        queuedAt: Double = 1_800_000_100
    ) throws -> HTTPRequest {
        var job: [String: Any] = [
            "id": id, "run_id": 1, "name": "build", "labels": labels,
            "status": action == "completed" ? "completed" : action == "in_progress" ? "in_progress" : "queued",
            "created_at": Timestamps.microTime(queuedAt),
        ]
        if let runner { job["runner_name"] = runner }
        let json: [String: Any] = [
            "action": action, "workflow_job": job,
            "repository": ["name": repo, "full_name": "octo/\(repo)", "owner": ["login": "octo"]],
        ]
        let body = Array(try JSONSerialization.data(withJSONObject: json))
        return HTTPRequest(
            method: "POST",
            target: "/webhook",
            headers: HTTPHeaders(deliveryHeaders(event: "workflow_job", body: body).map { (name: $0.0, value: $0.1) }),
            body: body
        )
    }

    var exposition: String { String(decoding: metrics.exposition(), as: UTF8.self) }

    @Test func recordsOnlyRepositoriesWithAJobThisServiceRuns() async throws {
        let handler = handler()
        _ = await handler.handle(try delivery("queued", job: 1, repo: "hosted", labels: ["ubuntu-latest"]))
        _ = await handler.handle(try delivery("completed", job: 1, repo: "hosted", labels: ["ubuntu-latest"]))
        _ = await handler.handle(try delivery("queued", job: 2, repo: "ours"))
        _ = await handler.handle(
            try delivery("in_progress", job: 3, repo: "taken", runner: "runner-2-ab12c", queuedAt: 1_700_000_000)
        )
        #expect(noted.all == ["repo octo/ours", "repo octo/taken"])
    }

    @Test func countsAJobInProgressNeverSeenQueuedAndFlagsItsRepository() async throws {
        let handler = handler()
        _ = await handler.handle(try delivery("queued", job: 1))
        _ = await handler.handle(try delivery("in_progress", job: 1, runner: "runner-1-ab12c"))  // seen queued
        _ = await handler.handle(try delivery("in_progress", job: 2, repo: "lost", runner: "runner-9-ab12c"))
        _ = await handler.handle(try delivery("completed", job: 2, repo: "lost", runner: "runner-9-ab12c"))  // once
        _ = await handler.handle(try delivery("completed", job: 3, repo: "ran", runner: "somebody"))
        #expect(noted.all.filter { $0.hasPrefix("loss") } == ["loss octo/lost", "loss octo/ran"])
        #expect(exposition.contains(#"webhook_missed_queued_total{owner="octo"} 2"#))
        #expect(logs.text.contains("a job in progress or completed was never seen queued"))
    }

    @Test func aJobQueuedBeforeTheProcessStartedOrForeignOrNeverRunIsNoSign() async throws {
        let handler = handler()
        _ = await handler.handle(try delivery("in_progress", job: 1, runner: "r", queuedAt: 1_799_999_000))
        _ = await handler.handle(
            try delivery("in_progress", job: 2, labels: ["ubuntu-latest"], runner: "GitHub Actions 2")
        )
        _ = await handler.handle(try delivery("completed", job: 3))  // cancelled while queued: no runner
        #expect(!noted.all.contains { $0.hasPrefix("loss") })
        #expect(!exposition.contains("webhook_missed_queued_total{"))
    }

    @Test func remembersTheMostRecentQueuedJobsOnly() {
        let memory = QueuedJobMemory(capacity: 3, since: 0)
        for id in 1...5 { memory.remember(Int64(id)) }
        #expect((1...5).map { memory.contains(Int64($0)) } == [false, false, true, true, true])
    }

    @Test func aFlaggedRepositoryIsReconciledFirst() {
        let registry = RepositoryRegistry(
            kubernetes: FakeKubernetesAPI(),
            namespace: "ns",
            configured: [],
            logger: logs.logger()
        )
        registry.prioritize(owner: "octo", repo: "recent")
        registry.prioritize(owner: "octo", repo: "lost", loss: true)
        #expect(registry.priority().map(\.description) == ["octo/lost", "octo/recent"])
    }
}
