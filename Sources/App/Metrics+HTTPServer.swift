import HTTPServer
import Observability

extension Metrics {
    /// What the webhook server's load shedding has done so far, as of a scrape (`/metrics` calls this first):
    /// `http_inflight_request_bytes`, `http_connections_waiting_for_budget` and
    /// `http_requests_shed_total{reason}` (`budget_cut`: held budget longest while another request needed it;
    /// `budget_wait`: waited for budget with nothing to cut; `descriptors`: no descriptor left for the connection).
    package func observe(_ statistics: HTTPServerStatistics) {
        setLoadShedding(
            inflightRequestBytes: statistics.inflightRequestBytes,
            connectionsWaitingForBudget: statistics.connectionsWaitingForBudget,
            shedTotals: [
                ("budget_cut", statistics.requestsCutForBudget),
                ("budget_wait", statistics.connectionsRefusedForBudget),
                ("descriptors", statistics.connectionsRefusedForDescriptors),
            ]
        )
    }
}
