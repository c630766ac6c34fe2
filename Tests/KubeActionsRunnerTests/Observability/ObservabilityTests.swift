import Foundation
import Logging
import Testing

@testable import Observability
@testable import TestSupport

@Suite struct ObservabilityTests {
    @Test func exposesTheOriginalDesignsMetricNamesWithHelp() {
        let metrics = Metrics()
        metrics.registerOutcomes(["accepted", "ignored"])
        metrics.countWebhookRequest(status: 200, owner: "o", repo: "r")
        metrics.countRunnerJobCreated(owner: "o", repo: "r")
        metrics.countGitHubRequest(
            endpoint: "POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig",
            status: "201"
        )
        metrics.webhookLatency.record(.milliseconds(30))
        metrics.registerGitHubRateLimit(owner: "")
        metrics.registerGitHubRateLimit(owner: "octo-org")
        metrics.setGitHubRateLimitRemaining(4999, owner: "octo-org")
        metrics.registerGitHubRateLimit(owner: "octo-org")  // known already: stays
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        for name in [
            "webhook_requests_total", "webhook_latency_seconds", "runner_jobs_created_total", "runner_jobs_active",
            "github_api_requests_total", "github_api_rate_limit_remaining", "webhook_outcomes_total",
        ] {
            #expect(text.contains("# HELP \(name) "), "no HELP for \(name)")
            #expect(text.contains("# TYPE \(name) "), "no TYPE for \(name)")
        }
        #expect(text.contains(#"github_api_rate_limit_remaining{owner=""} -1"#))
        #expect(text.contains(#"github_api_rate_limit_remaining{owner="octo-org"} 4999"#))
        #expect(text.contains(#"webhook_latency_seconds_bucket{le="0.05"} 1"#))
        #expect(text.contains(#"webhook_outcomes_total{outcome="ignored"} 0"#))
    }

    @Test func writesOneJSONObjectPerLine() throws {
        let logs = LogCapture()
        var logger = logs.logger(level: .info)
        logger[metadataKey: "component"] = "test"
        logger.debug("hidden")
        logger.info("quote \" and\nnewline", metadata: ["delivery": "abc", "job.id": "42"])
        #expect(logs.all.count == 1)
        let line = try #require(logs.all.first)
        #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1)
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: String]
        #expect(object["msg"] == "quote \" and\nnewline")
        #expect(object["level"] == "info")
        #expect(object["delivery"] == "abc" && object["job.id"] == "42" && object["component"] == "test")
        #expect(object["ts"]?.hasSuffix("Z") == true && object["ts"]?.count == 24)
    }

    @Test func writesPlainLinesInTextFormat() {
        let lines = LockedLines()
        let handler = JSONLogHandler(label: "t", level: .info, format: .text) { lines.append($0) }
        Logger(label: "t") { _ in handler }.warning("disk full", metadata: ["path": "/x"])
        #expect(lines.all.count == 1)
        #expect(lines.all[0].hasSuffix(" warning disk full path=/x\n"))
    }
}

final class LockedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}
