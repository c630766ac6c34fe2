import Foundation
import Testing

@testable import App
@testable import HTTPServer
@testable import Observability
@testable import Runners
@testable import Support
@testable import TestSupport
@testable import Webhook

/// The webhook flow end to end: real server, real sockets, real payloads, a recording provisioner.
@Suite struct WebhookHandlerTests {
    /// POSTs `body` to /webhook and returns the status and decoded JSON (nil for non-JSON bodies).
    private func deliver(
        _ app: Application,
        event: String,
        body: [UInt8],
        headers: [(String, String)]? = nil
    ) async throws -> (Int, [String: Any]?) {
        let headers = headers ?? deliveryHeaders(event: event, body: body)
        let response = try await client(app.server.port) {
            try $0.request("POST", "/webhook", headers: headers, body: body)
        }
        let json = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        return (response.status, json)
    }

    private func queuedPayload(
        labels: [String] = ["self-hosted", "linux"],
        status: String = "queued",
        id: Int = 42
    ) throws -> [UInt8] {
        var json =
            try JSONSerialization.jsonObject(with: Data(try Fixtures.bytes("github/workflow_job.queued.payload.json")))
            as! [String: Any]
        var job = json["workflow_job"] as! [String: Any]
        job["labels"] = labels
        job["status"] = status
        job["id"] = id
        json["workflow_job"] = job
        return Array(try JSONSerialization.data(withJSONObject: json))
    }

    @Test func provisionsAMatchingQueuedJobAndAnswersAfterward() async throws {
        let provisioner = RecordingProvisioner()
        let logs = LogCapture()
        try await withApplication(
            configuration: try .make(labelMatchers: "ubuntu-latest"),
            provisioner: provisioner,
            logs: logs
        ) { app in
            let body = try Fixtures.bytes("github/workflow_job.queued.payload.json")
            let headers = deliveryHeaders(
                event: "workflow_job",
                body: body,
                delivery: "00000000-0000-4000-8000-000000000001"
            )
            #expect(headers.last!.1 == (try Fixtures.signature(of: "workflow_job.queued.payload.json")))
            let (status, json) = try await deliver(app, event: "workflow_job", body: body, headers: headers)
            #expect(status == 200)
            #expect(json?["outcome"] as? String == "accepted")
            #expect(json?["job_id"] as? Int == 289782451)
            #expect(json?["runner_job"] as? String == "runner-289782451")
            #expect(
                provisioner.requests == [
                    RunnerRequest(
                        owner: "Octocoders",
                        repository: "Hello-World",
                        jobID: 289782451,
                        runID: 2202229078,
                        jobName: "update",
                        labels: ["ubuntu-latest"],
                        deliveryID: "00000000-0000-4000-8000-000000000001"
                    )
                ]
            )
            let metrics = String(decoding: app.metrics.exposition(), as: UTF8.self)
            #expect(metrics.contains(#"webhook_requests_total{status="200",owner="Octocoders",repo="Hello-World"} 1"#))
            #expect(metrics.contains(#"runner_jobs_created_total{owner="Octocoders",repo="Hello-World"} 1"#))
            #expect(metrics.contains(#"webhook_outcomes_total{outcome="accepted"} 1"#))
            #expect(metrics.contains("webhook_latency_seconds_count 1"))
        }
        let line = try #require(logs.all.first { $0.contains("\"outcome\":\"accepted\"") })
        for field in [
            "\"delivery\":\"00000000-0000-4000-8000-000000000001\"", "\"event\":\"workflow_job\"",
            "\"action\":\"queued\"",
            "\"repo\":\"Octocoders/Hello-World\"", "\"job.id\":\"289782451\"", "\"duration_ms\":",
        ] {
            #expect(line.contains(field), "log line lacks \(field): \(line)")
        }
    }

    @Test func acceptsFormEncodedDeliveries() async throws {
        let provisioner = RecordingProvisioner()
        try await withApplication(configuration: try .make(), provisioner: provisioner) { app in
            let payload = try queuedPayload()
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._*")
            let encoded = String(decoding: payload, as: UTF8.self).addingPercentEncoding(
                withAllowedCharacters: allowed
            )!
            let body = Array(("payload=" + encoded).utf8)
            let headers = deliveryHeaders(
                event: "workflow_job",
                body: body,
                contentType: "application/x-www-form-urlencoded"
            )
            let (status, json) = try await deliver(app, event: "workflow_job", body: body, headers: headers)
            #expect(status == 200)
            #expect(json?["outcome"] as? String == "accepted")
            #expect(provisioner.requests.map(\.jobID) == [42])
        }
    }

    @Test func rejectsBadSignaturesWithABareAnswer() async throws {
        let provisioner = RecordingProvisioner()
        let logs = LogCapture()
        try await withApplication(configuration: try .make(), provisioner: provisioner, logs: logs) { app in
            let body = try queuedPayload()
            for headers in [
                deliveryHeaders(event: "workflow_job", body: body, secret: "wrong"),
                deliveryHeaders(event: "workflow_job", body: body).filter { $0.0 != "X-Hub-Signature-256" },
            ] {
                let response = try await client(app.server.port) {
                    try $0.request("POST", "/webhook", headers: headers, body: body)
                }
                #expect(response.status == 401)
                #expect(response.text == "unauthorized\n")
            }
            #expect(provisioner.requests.isEmpty)
            let metrics = String(decoding: app.metrics.exposition(), as: UTF8.self)
            #expect(metrics.contains(#"webhook_requests_total{status="401",owner="",repo=""} 2"#))
            #expect(metrics.contains(#"webhook_outcomes_total{outcome="bad_signature"} 2"#))
        }
        #expect(logs.all.filter { $0.contains("\"outcome\":\"bad_signature\"") }.count == 2)
    }

    @Test func answersPingAndIgnoresOtherEventsWithoutError() async throws {
        try await withApplication(configuration: try .make()) { app in
            let ping = try Fixtures.bytes("github/ping.payload.json")
            let (pingStatus, pingJSON) = try await deliver(app, event: "ping", body: ping)
            #expect(pingStatus == 200 && pingJSON?["outcome"] as? String == "ping")
            let (pushStatus, pushJSON) = try await deliver(app, event: "push", body: Array("{}".utf8))
            #expect(pushStatus == 202 && pushJSON?["outcome"] as? String == "ignored_event")
        }
    }

    @Test(arguments: [
        "workflow_job.in_progress.payload.json", "workflow_job.waiting.payload.json",
        "workflow_job.completed.success.with-organization.payload.json",
    ])
    func ignoresActionsOtherThanQueued(file: String) async throws {
        let provisioner = RecordingProvisioner()
        try await withApplication(
            configuration: try .make(labelMatchers: "self-hosted,ubuntu-latest"),
            provisioner: provisioner
        ) { app in
            let (status, json) = try await deliver(
                app,
                event: "workflow_job",
                body: try Fixtures.bytes("github/\(file)")
            )
            #expect(status == 200)
            #expect(json?["outcome"] as? String == "ignored_action")
        }
        #expect(provisioner.requests.isEmpty)
    }

    @Test func takesQueuedDeliveriesWhoseJobWaitsForAnEnvironment() async throws {
        let provisioner = RecordingProvisioner()
        try await withApplication(configuration: try .make(), provisioner: provisioner) { app in
            let (status, json) = try await deliver(
                app,
                event: "workflow_job",
                body: try queuedPayload(status: "waiting")
            )
            #expect(status == 200 && json?["outcome"] as? String == "accepted")
            let (laterStatus, laterJSON) = try await deliver(
                app,
                event: "workflow_job",
                body: try queuedPayload(status: "in_progress", id: 7)
            )
            #expect(laterStatus == 200 && laterJSON?["outcome"] as? String == "not_queued")
        }
        #expect(provisioner.requests.map(\.jobID) == [42])
    }

    @Test func leavesJobsWhoseLabelsDoNotMatch() async throws {
        let provisioner = RecordingProvisioner()
        try await withApplication(configuration: try .make(labelMatchers: "linux+gpu"), provisioner: provisioner) {
            app in
            let (status, json) = try await deliver(
                app,
                event: "workflow_job",
                body: try queuedPayload(labels: ["linux"])
            )
            #expect(status == 200)
            #expect(json?["outcome"] as? String == "labels_do_not_match")
            #expect(json?["message"] as? String == "job labels do not match")
        }
        #expect(provisioner.requests.isEmpty)
    }

    @Test func answersARedeliveryWithoutDoingTheWorkAgain() async throws {
        let provisioner = RecordingProvisioner()
        try await withApplication(configuration: try .make(), provisioner: provisioner) { app in
            let body = try queuedPayload()
            let headers = deliveryHeaders(event: "workflow_job", body: body, delivery: "same-id")
            let first = try await deliver(app, event: "workflow_job", body: body, headers: headers)
            let second = try await deliver(app, event: "workflow_job", body: body, headers: headers)
            #expect(first.0 == 200 && first.1?["outcome"] as? String == "accepted")
            #expect(second.0 == 200 && second.1?["outcome"] as? String == "duplicate_delivery")
            // Another delivery for the same job reaches the provisioner, which finds the Job.
            let third = try await deliver(app, event: "workflow_job", body: body)
            #expect(third.1?["outcome"] as? String == "already_provisioned")
        }
        #expect(provisioner.requests.count == 2)
    }

    @Test func retriesAfterAFailedDeliveryAreNotTreatedAsDuplicates() async throws {
        let failing = RecordingProvisioner(.fail(ProvisioningError(status: 502, reason: "GitHub answered 500")))
        try await withApplication(configuration: try .make(), provisioner: failing) { app in
            let body = try queuedPayload()
            let headers = deliveryHeaders(event: "workflow_job", body: body, delivery: "retry-me")
            let first = try await deliver(app, event: "workflow_job", body: body, headers: headers)
            let second = try await deliver(app, event: "workflow_job", body: body, headers: headers)
            #expect(first.0 == 502 && first.1?["outcome"] as? String == "upstream_error")
            #expect(first.1?["message"] as? String == "GitHub answered 500")
            #expect(second.0 == 502)
        }
        #expect(failing.requests.count == 2)
    }

    @Test func answers503WhenProvisioningOutlivesTheDeadline() async throws {
        let time = ManualClock()
        let logs = LogCapture()
        let slow = RecordingProvisioner(.slow(.seconds(30)), clock: time)
        let handler = WebhookHandler(
            verifier: SignatureVerifier(secrets: [Secret(Fixtures.secret)]),
            matcher: .selfHosted,
            deliveries: DeliveryLog(),
            provisioner: slow,
            metrics: Metrics(),
            logger: logs.logger(),
            clock: time
        )
        let body = try queuedPayload()
        let request = HTTPRequest(
            method: "POST",
            target: "/webhook",
            headers: HTTPHeaders(deliveryHeaders(event: "workflow_job", body: body).map { ($0.0, $0.1) }),
            body: body
        )
        let answer = Task { await handler.handle(request) }
        try await time.waitForSleepers(2)  // the provisioning and the deadline
        #expect(time.sleeps == [.seconds(8), .seconds(30)])
        time.advance(by: .milliseconds(7999))
        #expect(time.sleepers == 2)  // not yet
        time.advance(by: .milliseconds(1))
        let response = await answer.value
        #expect(response.status == 503)
        #expect(String(decoding: response.body, as: UTF8.self).contains("provisioning timed out"))
        #expect(time.sleepers == 0)  // the provisioning was cancelled
        #expect(logs.text.contains(#""duration_ms":"8000""#))
    }

    /// The deadline cancels provisioning, but its last call was answered meanwhile: the runner exists, and the
    /// answer says so instead of 503.
    @Test func answersWithProvisioningThatFinishesAsTheDeadlineCancelsIt() async throws {
        let time = ManualClock()
        let provisioner = RecordingProvisioner(.slowToTheEnd(.seconds(30)), clock: time)
        let handler = WebhookHandler(
            verifier: SignatureVerifier(secrets: [Secret(Fixtures.secret)]),
            matcher: .selfHosted,
            deliveries: DeliveryLog(),
            provisioner: provisioner,
            metrics: Metrics(),
            logger: LogCapture().logger(),
            clock: time
        )
        let body = try queuedPayload()
        let request = HTTPRequest(
            method: "POST",
            target: "/webhook",
            headers: HTTPHeaders(deliveryHeaders(event: "workflow_job", body: body).map { ($0.0, $0.1) }),
            body: body
        )
        let answer = Task { await handler.handle(request) }
        try await time.waitForSleepers(2)
        time.advance(by: .seconds(8))
        let response = await answer.value
        #expect(response.status == 200)
        #expect(!String(decoding: response.body, as: UTF8.self).contains("timed out"))
    }

    @Test(arguments: [
        ("application/json", "{not json", 400),
        ("application/json", #"{"action":"queued"}"#, 400),
        ("text/plain", "{}", 415),
        ("application/x-www-form-urlencoded", "other=1", 400),
        ("application/x-www-form-urlencoded", "payload=%zz", 400),
    ])
    func rejectsSignedButUnreadableDeliveries(contentType: String, body: String, status: Int) async throws {
        let provisioner = RecordingProvisioner()
        try await withApplication(configuration: try .make(), provisioner: provisioner) { app in
            let bytes = Array(body.utf8)
            let headers = deliveryHeaders(event: "workflow_job", body: bytes, contentType: contentType)
            let (answered, json) = try await deliver(app, event: "workflow_job", body: bytes, headers: headers)
            #expect(answered == status)
            #expect(json?["outcome"] as? String == "bad_request")
        }
        #expect(provisioner.requests.isEmpty)
    }

    @Test func neverLogsOrAnswersWithTheSecret() async throws {
        let logs = LogCapture()
        let secret = "s3cr3t-value-that-must-not-leak"
        try await withApplication(configuration: try .make(secret: secret), logs: logs) { app in
            let body = try queuedPayload()
            _ = try await deliver(
                app,
                event: "workflow_job",
                body: body,
                headers: deliveryHeaders(event: "workflow_job", body: body, secret: secret)
            )
            _ = try await deliver(
                app,
                event: "workflow_job",
                body: body,
                headers: deliveryHeaders(event: "workflow_job", body: body, secret: "x")
            )
            let metrics = try await client(app.server.port) { try $0.request("GET", "/metrics").text }
            #expect(!metrics.contains(secret))
        }
        #expect(!logs.text.isEmpty)
        #expect(!logs.text.contains(secret))
    }

    @Test func replacesTheRunnerOfAJobWhoseRunnerTookAnotherJob() async throws {
        let provisioner = RecordingProvisioner()
        try await withApplication(configuration: try .make(), provisioner: provisioner) { app in
            var json =
                try JSONSerialization.jsonObject(
                    with: Data(try Fixtures.bytes("github/workflow_job.in_progress.payload.json"))
                )
                as! [String: Any]
            var job = json["workflow_job"] as! [String: Any]
            job["id"] = 42
            job["runner_name"] = "runner-77-a1b2c"  // the runner made for job 77 started job 42
            json["workflow_job"] = job
            let body = Array(try JSONSerialization.data(withJSONObject: json))
            let (status, answer) = try await deliver(app, event: "workflow_job", body: body)
            #expect(status == 200)
            #expect(answer?["outcome"] as? String == "runner_replaced")
            #expect(answer?["runner_job"] as? String == "runner-77-after-42")
            // Its own runner took it: nothing to do.
            job["runner_name"] = "runner-42-a1b2c"
            json["workflow_job"] = job
            let own = Array(try JSONSerialization.data(withJSONObject: json))
            #expect(
                try await deliver(app, event: "workflow_job", body: own).1?["outcome"] as? String == "ignored_action"
            )
            // A warm pool's runner took it: made for no job, so no job lost its runner.
            job["runner_name"] = "runner-warm-k3x9q-a1b2c"
            json["workflow_job"] = job
            let warm = Array(try JSONSerialization.data(withJSONObject: json))
            #expect(
                try await deliver(app, event: "workflow_job", body: warm).1?["outcome"] as? String == "ignored_action"
            )
        }
        let request = try #require(provisioner.requests.first)
        #expect(provisioner.requests.count == 1)
        #expect(request.jobID == 77 && request.replacing == 42 && request.labels.isEmpty)
        // The provisioner replaces only a runner one of this deployment's Jobs records: it is told which.
        #expect(request.takenByRunner == "runner-77-a1b2c")
    }
}
