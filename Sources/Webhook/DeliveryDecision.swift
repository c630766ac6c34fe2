import Runners

/// What a verified, decoded `workflow_job` delivery asks of the service, decided from the event alone, without
/// calling GitHub or Kubernetes: a runner to provision, a taken runner to replace, or an answer.
///
/// `WebhookHandler` acts on it; `kube-actions-runner render` shows what it would provision, so both take the same
/// steps in the same order: allow-list, `in_progress` replacement, action, status, labels.
package enum DeliveryDecision: Sendable, Equatable {
    /// A runner for this request.
    case provision(RunnerRequest)
    /// The runner made for job `intended` took the delivery's job instead (an `in_progress` delivery).
    case replaceRunner(intended: Int64)
    /// Nothing to provision: the delivery is answered with this outcome.
    case answer(WebhookOutcome, status: Int, message: String)

    package init(
        _ event: WorkflowJobEvent,
        allowList: RepositoryAllowList,
        matcher: some JobMatching,
        deliveryID: String?
    ) {
        guard allowList.allows(owner: event.repository.owner.login, repository: event.repository.name) else {
            self = .answer(.notAllowed, status: 403, message: "repository not allowed")
            return
        }
        if event.action == "in_progress", let runnerName = event.workflowJob.runnerName,
            let name = RunnerName(parsing: runnerName, as: .registration), !name.isWarm,
            name.jobID != event.workflowJob.id
        {
            self = .replaceRunner(intended: name.jobID)
            return
        }
        guard event.action == "queued" else {
            self = .answer(.ignoredAction, status: 200, message: "action ignored")
            return
        }
        // `queued` deliveries carry status queued, or waiting (deployment protection rules).
        guard event.workflowJob.status == "queued" || event.workflowJob.status == "waiting" else {
            self = .answer(.notQueued, status: 200, message: "job is no longer queued")
            return
        }
        guard matcher.matches(event.workflowJob.labels) else {
            self = .answer(.labelsDoNotMatch, status: 200, message: "job labels do not match")
            return
        }
        self = .provision(
            RunnerRequest(
                owner: event.repository.owner.login,
                repository: event.repository.name,
                jobID: event.workflowJob.id,
                runID: event.workflowJob.runID,
                jobName: event.workflowJob.name,
                labels: event.workflowJob.labels,
                deliveryID: deliveryID
            )
        )
    }
}
