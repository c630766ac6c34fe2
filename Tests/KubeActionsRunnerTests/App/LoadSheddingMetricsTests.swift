import Testing

@testable import App
@testable import HTTPServer
@testable import Observability

/// The webhook server's load shedding, as a scrape sees it.
@Suite struct LoadSheddingMetricsTests {
    @Test func exportsTheServersSheddingAsCountersThatNeverCountTwice() {
        let metrics = Metrics()
        let statistics = HTTPServerStatistics()
        var text: String { String(decoding: metrics.exposition(), as: UTF8.self) }
        metrics.observe(statistics)  // as the composition root does at start
        #expect(text.contains(#"http_requests_shed_total{reason="budget_cut"} 0"#))
        #expect(text.contains(#"http_requests_shed_total{reason="descriptors"} 0"#))

        statistics.budgetCuts.add(2, ordering: .relaxed)
        statistics.descriptorRefusals.add(1, ordering: .relaxed)
        statistics.inflightBytes.store(4096, ordering: .relaxed)
        statistics.budgetWaiting.store(3, ordering: .relaxed)
        metrics.observe(statistics)
        metrics.observe(statistics)  // a second scrape with nothing new adds nothing
        #expect(text.contains(#"http_requests_shed_total{reason="budget_cut"} 2"#))
        #expect(text.contains(#"http_requests_shed_total{reason="descriptors"} 1"#))
        #expect(text.contains(#"http_requests_shed_total{reason="budget_wait"} 0"#))
        #expect(text.contains("http_inflight_request_bytes 4096"))
        #expect(text.contains("http_connections_waiting_for_budget 3"))

        statistics.budgetWaiting.store(0, ordering: .relaxed)
        statistics.budgetRefusals.add(5, ordering: .relaxed)
        metrics.observe(statistics)
        #expect(text.contains(#"http_requests_shed_total{reason="budget_wait"} 5"#))
        #expect(text.contains(#"http_requests_shed_total{reason="budget_cut"} 2"#))
        #expect(text.contains("http_connections_waiting_for_budget 0"))
    }
}
