/// How a webhook delivery ended; each has its own log message and `webhook_outcomes_total` series.
package enum WebhookOutcome: String, Sendable, CaseIterable {
    /// A runner Job was created for the job.
    case accepted
    /// A runner Job for the job already existed.
    case alreadyProvisioned = "already_provisioned"
    /// The same `X-GitHub-Delivery` was handled before.
    case duplicateDelivery = "duplicate_delivery"
    /// A `ping` (sent when a webhook is created).
    case ping
    /// An event other than `workflow_job`.
    case ignoredEvent = "ignored_event"
    /// An `in_progress` delivery showed that the runner made for another job took this one: a replacement runner
    /// was made for that other job, which would otherwise wait for the next reconciler cycle.
    case runnerReplaced = "runner_replaced"
    /// A `workflow_job` action other than `queued`.
    case ignoredAction = "ignored_action"
    /// The job's labels match no `LABEL_MATCHERS` matcher.
    case labelsDoNotMatch = "labels_do_not_match"
    /// The job is no longer queued.
    case notQueued = "not_queued"
    /// A correctly signed `workflow_job` delivery for a repository outside `ALLOWED_OWNERS`/`ALLOWED_REPOSITORIES`:
    /// answered 403, nothing provisioned.
    case notAllowed = "not_allowed"
    /// Missing or wrong signature.
    case badSignature = "bad_signature"
    /// A signed delivery the service cannot read (content type, JSON, headers).
    case badRequest = "bad_request"
    /// The credential's budget of content-creating requests (GitHub's 80 a minute, 500 an hour) is spent: answered
    /// 202, nothing provisioned; the reconciler provisions the job as the budget frees.
    case deferred
    /// GitHub or Kubernetes failed or timed out; the job was not provisioned.
    case upstreamError = "upstream_error"
}
