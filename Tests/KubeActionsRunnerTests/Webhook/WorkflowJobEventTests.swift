import Testing

@testable import TestSupport
@testable import Webhook

/// The fast path of `WorkflowJobEvent.decode` answers exactly what the full decoder does, or leaves the body to it.
@Suite struct WorkflowJobEventTests {
    static let payloads = [
        "github/workflow_job.queued.payload.json", "github/workflow_job.waiting.payload.json",
        "github/workflow_job.in_progress.payload.json",
        "github/workflow_job.completed.success.with-organization.payload.json",
    ]

    @Test(arguments: payloads)
    func realDeliveriesTakeTheFastPathAndDecodeAlike(file: String) throws {
        let body = try Fixtures.bytes(file)
        let fast = try #require(WorkflowJobEvent.fastDecode(body))
        #expect(fast == (try WorkflowJobEvent.fullDecode(body)))
    }

    /// Edits of a real delivery where the fast path must stop or agree: escapes, nulls, other types, missing and
    /// repeated fields, broken JSON.
    @Test(arguments: [
        (#""name": "update""#, #""name": "up\"date""#),
        (#""name": "update""#, #""name": "b\u00fcild""#),
        (#""name": "update""#, #""name": "bü ild""#),
        (#""runner_name": "GitHub Actions 5""#, #""runner_name": 5"#),
        (#""runner_name": "GitHub Actions 5""#, #""runner_name": null"#),
        (#""workflow_name": "CodeQL""#, #""other": "CodeQL""#),
        (#""run_attempt": 1"#, #""run_attempt": 1.0"#),
        (#""run_attempt": 1"#, #""run_attempt": null"#),
        (#""run_attempt": 1"#, #""run_attempt": "1""#),
        (#""id": 289782451"#, #""id": -289782451"#),
        (#""id": 289782451"#, #""id": 2.89782451e8"#),
        (#""labels": ["#, #""labels": [1, "#),
        (#""labels": ["#, #""labels": "x", "other": ["#),
        (#""labels": ["ubuntu-latest"]"#, #""labels": []"#),
        (#""action": "queued""#, #""action": null"#),
        (#""action": "queued""#, #""action": "queued", "action": "waiting""#),
        (#""action": "queued""#, #""actio": "queued""#),
        (#""workflow_job": {"#, #""workflow_job": {"id": 1, "#),
        (#""action": "queued""#, #""action": "queued",,"#),
        (#""installation": {"#, #""installation": null, "other": {"#),
        (#""installation": {"#, #""other": {"#),
        (#""id": 3456996"#, #""id": "3456996""#),
        (#""id": 3456996"#, #""identity": 3456996"#),
    ])
    func editedDeliveriesDecodeAlikeOrFallBack(edit: (String, String)) throws {
        let text = try Fixtures.text("github/workflow_job.queued.payload.json")
        let edited = text.replacingOccurrences(of: edit.0, with: edit.1)
        try #require(edited != text, "the edit applies")
        let body = Array(edited.utf8)
        let full = Result { () throws(WebhookPayloadError) in try WorkflowJobEvent.fullDecode(body) }
        if let fast = WorkflowJobEvent.fastDecode(body) {
            #expect(full == .success(fast))
        }
        #expect(Result { () throws(WebhookPayloadError) in try WorkflowJobEvent.decode(body) } == full)
    }
}
