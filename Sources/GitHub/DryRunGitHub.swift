import Support
import Synchronization

/// GitHub as `DRY_RUN=true` sees it: every job is still queued, and each registration returns a placeholder
/// JIT config that registers nothing. Nothing leaves the process.
package final class DryRunGitHub: GitHubAPI {
    private let nextRunnerID = Atomic<Int64>(1)

    package init() {}

    package func job(owner: String, repo: String, id: Int64) async throws(GitHubAPIError) -> GitHubJob {
        GitHubJob(id: id, status: "queued", conclusion: nil, runnerName: nil, labels: [])
    }

    package func generateJITConfig(
        owner: String,
        repo: String,
        scope: RunnerScope,
        _ request: JITConfigRequest
    ) async throws(GitHubAPIError)
        -> JITConfig
    {
        let id = nextRunnerID.wrappingAdd(1, ordering: .relaxed).oldValue
        return JITConfig(
            runnerID: id,
            runnerName: request.name,
            encodedConfig: Secret("dry-run-placeholder-jit-config")
        )
    }

    package func runs(owner: String, repo: String, status: String) async throws(GitHubAPIError) -> [WorkflowRun] { [] }

    package func jobs(owner: String, repo: String, runID: Int64) async throws(GitHubAPIError) -> [GitHubJob] { [] }

    package func runners(
        owner: String,
        repo: String,
        scope: RunnerScope
    ) async throws(GitHubAPIError) -> [RegisteredRunner] { [] }

    package func runner(
        owner: String,
        repo: String,
        scope: RunnerScope,
        id: Int64
    ) async throws(GitHubAPIError) -> RegisteredRunner? {
        nil
    }

    package func deleteRunner(
        owner: String,
        repo: String,
        scope: RunnerScope,
        runnerID: Int64
    ) async throws(GitHubAPIError) {}

    /// Every organization has its default group, id 1.
    package func runnerGroups(organization: String) async throws(GitHubAPIError) -> [RunnerGroup] {
        [RunnerGroup(id: 1, name: "Default", visibility: "all", isDefault: true)]
    }
}

extension DryRunGitHub {
    /// No hook has deliveries: nothing was delivered to a dry run through GitHub.
    package func hookDeliveries(
        _ hook: WebhookHook,
        perPage: Int,
        cursor: String?
    ) async throws(GitHubAPIError) -> HookDeliveryPage {
        HookDeliveryPage(deliveries: [])
    }

    package func redeliver(_ hook: WebhookHook, deliveryID: Int64) async throws(GitHubAPIError) {}
}
