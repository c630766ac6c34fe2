import Prometheus
import Synchronization

/// The service's metrics in one injected registry. Names are the original design's contract.
///
/// Label values come from bounded sets (outcomes, statuses, route templates) or from signature-verified
/// deliveries (owner, repo): an unauthenticated client cannot create series.
package final class Metrics: Sendable {
    package let registry: PrometheusCollectorRegistry

    /// `webhook_latency_seconds`: time from a complete request to its response, for `/webhook`.
    package let webhookLatency: DurationHistogram
    /// `runner_jobs_active`: runner Jobs that exist and have not finished.
    package let runnerJobsActive: Gauge
    /// `reconciler_leader`: 1 on the replica that holds the Lease and runs the reconciler.
    package let leader: Gauge
    /// `reconciler_jobs_queued_too_long`: matching queued jobs older than 5 minutes, at the last cycle.
    package let jobsQueuedTooLong: Gauge
    /// `reconciler_points_last_minute`: GitHub points the reconciler spent in the minute up to its last cycle's end.
    package let reconcilerPoints: Gauge
    /// `reconciler_repositories_visited`: repositories the last cycle visited.
    package let reconcilerRepositories: Gauge
    /// `reconciler_cycle_seconds`: how long the last cycle took.
    package let reconcilerCycleSeconds: Gauge
    /// `reconciler_oldest_unvisited_seconds`: since when the known repository waiting longest for its visit was
    /// last visited (or first known), at the last cycle's end.
    package let reconcilerOldestUnvisited: Gauge
    /// Webhook deliveries answered since start, for the memory trimmer's "quiet" test (not exported: the labelled
    /// `webhook_requests_total` series carry the same count).
    package var webhookRequestsAnswered: Int { answered.load(ordering: .relaxed) }
    private let answered = Atomic<Int>(0)
    /// `http_requests_shed_total` as last exported, by reason (the server keeps the running totals).
    private let shed = Mutex<[String: Int]>([:])
    /// The `owner` labels of `github_api_rate_limit_remaining` created so far.
    private let rateLimitOwners = Mutex<Set<String>>([])

    package init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        webhookLatency = registry.makeDurationHistogram(
            descriptor: metric(
                "webhook_latency_seconds",
                "Time to answer a webhook delivery, from the complete request to the response."
            ),
            labels: [],
            buckets: [
                .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
                .milliseconds(7500), .seconds(10),
            ]
        )
        runnerJobsActive = registry.makeGauge(
            descriptor: metric("runner_jobs_active", "Runner Jobs that exist and have not finished.")
        )
        leader = registry.makeGauge(
            descriptor: metric(
                "reconciler_leader",
                "1 on the replica that holds the leader Lease and runs the reconciler."
            )
        )
        jobsQueuedTooLong = registry.makeGauge(
            descriptor: metric(
                "reconciler_jobs_queued_too_long",
                "Queued jobs with matching labels older than 5 minutes, as the last reconciler cycle saw them."
            )
        )
        reconcilerPoints = registry.makeGauge(
            descriptor: metric(
                "reconciler_points_last_minute",
                "GitHub points (a GET 1, a POST or DELETE 5) the reconciler spent in the minute up to its last cycle's end."
            )
        )
        reconcilerRepositories = registry.makeGauge(
            descriptor: metric("reconciler_repositories_visited", "Repositories the last reconciler cycle visited.")
        )
        reconcilerCycleSeconds = registry.makeGauge(
            descriptor: metric("reconciler_cycle_seconds", "How long the last reconciler cycle took, in seconds.")
        )
        reconcilerOldestUnvisited = registry.makeGauge(
            descriptor: metric(
                "reconciler_oldest_unvisited_seconds",
                "Seconds since the known repository waiting longest for the reconciler was last visited (or first known)."
            )
        )
        for result in ["ok", "partial", "failed", "skipped"] { _ = reconcilerCycleCounter(result) }
        _ = reconcilerRecoveredCounter()
        for how in ["poll", "redelivery"] { _ = lostJobsRecoveredCounter(how) }
        _ = reserveHitsCounter()
        for result in Self.redeliveryResults { _ = redeliveriesCounter(result) }
        for reason in Self.reapReasons {
            _ = registry.makeCounter(
                descriptor: metric(
                    "runners_reaped_total",
                    "Runner Jobs and registrations removed because no job could use them, by reason."
                ),
                labels: [("reason", reason)]
            )
        }
        for reason in ["quota", "refused"] { jobsWaitingGauge(reason).set(Int64(0)) }
    }

    /// `webhook_requests_total{status,owner,repo}`; owner and repo are empty unless the delivery was verified.
    package func countWebhookRequest(status: Int, owner: String?, repo: String?) {
        answered.add(1, ordering: .relaxed)
        registry.makeCounter(
            descriptor: metric(
                "webhook_requests_total",
                "Webhook deliveries answered, by HTTP status and, for verified deliveries, owner and repo."
            ),
            labels: [("status", String(status)), ("owner", owner ?? ""), ("repo", repo ?? "")]
        ).increment()
    }

    /// `webhook_missed_queued_total{owner}`: verified, allowed `in_progress` or `completed` deliveries of a matching
    /// job this process never saw `queued` (queued after it started): a sign that the `queued` delivery was lost.
    package func countMissedQueued(owner: String) {
        registry.makeCounter(
            descriptor: metric(
                "webhook_missed_queued_total",
                "Deliveries of a matching job in progress or completed that this process never saw queued, by owner."
            ),
            labels: [("owner", owner)]
        ).increment()
    }

    /// `runner_jobs_created_total{owner,repo}`.
    package func countRunnerJobCreated(owner: String, repo: String) {
        registry.makeCounter(
            descriptor: metric("runner_jobs_created_total", "Runner Jobs created, by repository owner and name."),
            labels: [("owner", owner), ("repo", repo)]
        ).increment()
    }

    /// `github_api_requests_total{endpoint,status}`; `endpoint` is a route template, `status` a code or `transport`.
    package func countGitHubRequest(endpoint: String, status: String) {
        registry.makeCounter(
            descriptor: metric(
                "github_api_requests_total",
                "GitHub REST API calls, by route template and HTTP status (transport: no response)."
            ),
            labels: [("endpoint", endpoint), ("status", status)]
        ).increment()
    }

    /// `github_api_rate_limit_remaining{owner}`: the last `x-ratelimit-remaining` GitHub sent for the credential
    /// that serves `owner` (a token or an App installation has its own window; "" is the default token).
    package func setGitHubRateLimitRemaining(_ remaining: Int64, owner: String) {
        rateLimitGauge(owner).set(remaining)
        rateLimitOwners.withLock { _ = $0.insert(owner) }
    }

    /// Creates `github_api_rate_limit_remaining{owner}` at -1 (not known yet), unless GitHub already said more.
    package func registerGitHubRateLimit(owner: String) {
        let isNew = rateLimitOwners.withLock { $0.insert(owner).inserted }
        if isNew { rateLimitGauge(owner).set(Int64(-1)) }
    }

    private func rateLimitGauge(_ owner: String) -> Gauge {
        registry.makeGauge(
            descriptor: metric(
                "github_api_rate_limit_remaining",
                "The x-ratelimit-remaining GitHub sent last, by credential owner (\"\": the default token); -1 until a response arrived."
            ),
            labels: [("owner", owner)]
        )
    }

    /// `reconciler_cycles_total{result}`: ok, partial (stopped at the rate-limit reserve), failed, skipped (not leader).
    package func countReconcilerCycle(_ result: String) { reconcilerCycleCounter(result).increment() }

    private func reconcilerCycleCounter(_ result: String) -> Counter {
        registry.makeCounter(
            descriptor: metric("reconciler_cycles_total", "Reconciler cycles by result."),
            labels: [("result", result)]
        )
    }

    /// `reconciler_jobs_recovered_total`: queued jobs without a runner Job that the reconciler provisioned.
    package func countRecovered() { reconcilerRecoveredCounter().increment() }

    private func reconcilerRecoveredCounter() -> Counter {
        registry.makeCounter(
            descriptor: metric(
                "reconciler_jobs_recovered_total",
                "Queued jobs the webhook path missed and the reconciler provisioned."
            )
        )
    }

    /// `reconciler_lost_jobs_recovered_total{how}`: queued jobs whose delivery was lost that got their runner Job
    /// anyway, by the reconciler's polling (`poll`) or by a delivery it had GitHub redeliver (`redelivery`).
    package func countLostJobRecovered(how: String) { lostJobsRecoveredCounter(how).increment() }

    private func lostJobsRecoveredCounter(_ how: String) -> Counter {
        registry.makeCounter(
            descriptor: metric(
                "reconciler_lost_jobs_recovered_total",
                "Queued jobs whose delivery was lost that got a runner Job, by how: poll or redelivery."
            ),
            labels: [("how", how)]
        )
    }

    /// `webhook_failed_deliveries_seen_total{owner}`: `workflow_job` deliveries a hook's delivery list shows as not
    /// taken (and not taken since), each GUID once: a sign of loss for its repository. `owner` is "" when an App's
    /// hook names a repository by an id no verified delivery carried (an organization's hook names its owner).
    package func countFailedDeliverySeen(owner: String) {
        registry.makeCounter(
            descriptor: metric(
                "webhook_failed_deliveries_seen_total",
                "Failed workflow_job deliveries seen in a hook's delivery list, by owner (\"\": repository not known)."
            ),
            labels: [("owner", owner)]
        ).increment()
    }

    /// Every `result` of `webhook_redeliveries_total`.
    package static let redeliveryResults = ["redelivered", "failed"]

    /// `webhook_redeliveries_total{result}`: failed `workflow_job` deliveries the reconciler asked GitHub to deliver
    /// again (`redelivered`), or whose redelivery GitHub refused (`failed`).
    package func countRedelivery(_ result: String) { redeliveriesCounter(result).increment() }

    private func redeliveriesCounter(_ result: String) -> Counter {
        registry.makeCounter(
            descriptor: metric(
                "webhook_redeliveries_total",
                "Failed workflow_job deliveries the reconciler asked GitHub to redeliver, by result."
            ),
            labels: [("result", result)]
        )
    }

    /// `reconciler_rate_limit_reserve_hits_total`: cycles cut short to keep GitHub calls for webhooks.
    package func countReserveHit() { reserveHitsCounter().increment() }

    private func reserveHitsCounter() -> Counter {
        registry.makeCounter(
            descriptor: metric(
                "reconciler_rate_limit_reserve_hits_total",
                "Reconciler cycles stopped because GitHub's remaining rate limit fell under the reserve."
            )
        )
    }

    /// Every `reason` of `runners_reaped_total`, each explained in README's troubleshooting.
    package static let reapReasons = [
        "no_secret", "orphan_registration", "leftover_registration", "idle", "failed_create", "image_pull",
        "unschedulable", "crash_loop", "run_container_error", "dind_not_ready", "runner_exited", "never_connected",
        "orphaned_hook_pod",
    ]

    /// `runner_jobs_waiting{reason}`: runner Jobs kept while their pod must wait (`quota`: a ResourceQuota refuses
    /// it for now), at the last reconciler cycle.
    package func setJobsWaiting(reason: String, _ count: Int64) {
        jobsWaitingGauge(reason).set(count)
    }

    private func jobsWaitingGauge(_ reason: String) -> Gauge {
        registry.makeGauge(
            descriptor: metric(
                "runner_jobs_waiting",
                "Runner Jobs kept while their pod must wait, by reason (quota: a ResourceQuota refuses it for now)."
            ),
            labels: [("reason", reason)]
        )
    }

    /// `runners_reaped_total{reason}`: runner Jobs or registrations removed because no job could use them.
    package func countReaped(_ reason: String) {
        registry.makeCounter(
            descriptor: metric(
                "runners_reaped_total",
                "Runner Jobs and registrations removed because no job could use them, by reason."
            ),
            labels: [("reason", reason)]
        ).increment()
    }

    /// The webhook server's load shedding as of a scrape (`/metrics` sets it first): the request bytes in flight,
    /// the connections waiting for budget, and `http_requests_shed_total{reason}` from the server's running totals.
    package func setLoadShedding(
        inflightRequestBytes: Int,
        connectionsWaitingForBudget: Int,
        shedTotals: [(reason: String, total: Int)]
    ) {
        registry.makeGauge(
            descriptor: metric("http_inflight_request_bytes", "Request bytes received and not yet answered.")
        ).set(Int64(inflightRequestBytes))
        registry.makeGauge(
            descriptor: metric(
                "http_connections_waiting_for_budget",
                "Connections not read while the in-flight request bytes are at MAX_INFLIGHT_BODY_BYTES."
            )
        ).set(Int64(connectionsWaitingForBudget))
        shed.withLock { exported in
            for (reason, total) in shedTotals {
                let counter = registry.makeCounter(
                    descriptor: metric(
                        "http_requests_shed_total",
                        "Requests and connections answered 503 to shed load."
                    ),
                    labels: [("reason", reason)]
                )
                let delta = total - exported[reason, default: 0]
                guard delta > 0 else { continue }
                counter.increment(by: Int64(delta))
                exported[reason] = total
            }
        }
    }

    /// `runner_profiles_reloads_total{result}`: changes of `PROFILES_FILE` put in force (`ok`) or refused
    /// (`invalid`: the profiles in force stay).
    package func countProfilesReload(_ result: String) {
        registry.makeCounter(
            descriptor: metric(
                "runner_profiles_reloads_total",
                "Changes of PROFILES_FILE put in force (ok) or refused, keeping the profiles in force (invalid)."
            ),
            labels: [("result", result)]
        ).increment()
    }

    /// `runner_profiles_file_valid`: 1 while the profiles in force are `PROFILES_FILE`'s content, 0 while the file
    /// is refused (missing or invalid) and the last good profiles serve.
    package func setProfilesFileValid(_ valid: Bool) {
        registry.makeGauge(
            descriptor: metric(
                "runner_profiles_file_valid",
                "1 while PROFILES_FILE is in force, 0 while it is refused and the last good profiles serve."
            )
        ).set(Int64(valid ? 1 : 0))
    }

    /// `webhook_outcomes_total{outcome}`: why each delivery ended as it did (the Webhook layer names the outcomes).
    package func countOutcome(_ outcome: String) {
        outcomeCounter(outcome).increment()
    }

    /// Creates the outcome series at 0, so rate() and absent() alerts work before the first event.
    package func registerOutcomes(_ outcomes: [String]) {
        for outcome in outcomes { _ = outcomeCounter(outcome) }
    }

    private func outcomeCounter(_ outcome: String) -> Counter {
        registry.makeCounter(
            descriptor: metric(
                "webhook_outcomes_total",
                "Webhook deliveries by outcome: what the service decided and why."
            ),
            labels: [("outcome", outcome)]
        )
    }

    /// The exposition, in Prometheus text format 0.0.4.
    package func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(8 * 1024)
        registry.emit(into: &buffer)
        return buffer
    }
}

/// A descriptor whose full name is exactly `name` (the library joins its parts with `_`).
private func metric(_ name: String, _ help: String) -> MetricNameDescriptor {
    guard let split = name.utf8.lastIndex(of: UInt8(ascii: "_")) else {
        return MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
    return MetricNameDescriptor(
        metricName: String(name[..<split]),
        unitName: String(name[name.index(after: split)...]),
        helpText: help
    )
}
