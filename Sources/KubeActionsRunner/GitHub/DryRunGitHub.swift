import Synchronization

/// GitHub as `DRY_RUN=true` sees it: every job is still queued, and each registration returns a placeholder
/// JIT config that registers nothing. Nothing leaves the process.
public final class DryRunGitHub: GitHubAPI {
    private let nextRunnerID = Atomic<Int64>(1)

    public init() {}

    public func job(owner: String, repo: String, id: Int64) async throws(GitHubAPIError) -> GitHubJob {
        GitHubJob(id: id, status: "queued", conclusion: nil, runnerName: nil, labels: [])
    }

    public func generateJITConfig(
        owner: String,
        repo: String,
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

    public func runs(owner: String, repo: String, status: String) async throws(GitHubAPIError) -> [WorkflowRun] { [] }

    public func jobs(owner: String, repo: String, runID: Int64) async throws(GitHubAPIError) -> [GitHubJob] { [] }

    public func runners(owner: String, repo: String) async throws(GitHubAPIError) -> [RegisteredRunner] { [] }

    public func runner(owner: String, repo: String, id: Int64) async throws(GitHubAPIError) -> RegisteredRunner? { nil }

    public func deleteRunner(owner: String, repo: String, runnerID: Int64) async throws(GitHubAPIError) {}
}
