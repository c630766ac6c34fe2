/// A workflow job as `GET /repos/{owner}/{repo}/actions/jobs/{job_id}` describes it.
public struct GitHubJob: Sendable, Equatable, Decodable {
    public var id: Int64
    /// `queued`, `in_progress`, `completed`, `waiting`, `requested` or `pending`.
    public var status: String
    public var conclusion: String?
    public var runnerName: String?
    public var labels: [String]

    enum CodingKeys: String, CodingKey {
        case id, status, conclusion, labels
        case runnerName = "runner_name"
    }

    /// Whether a runner can still pick the job up.
    public var isWaitingForRunner: Bool {
        ["queued", "waiting", "requested", "pending"].contains(status)
    }
}

/// What to register: one ephemeral runner for one job.
public struct JITConfigRequest: Sendable, Equatable {
    public var name: String
    public var runnerGroupID: Int
    public var labels: [String]
    public var workFolder = "_work"

    public init(name: String, runnerGroupID: Int, labels: [String]) {
        self.name = name
        self.runnerGroupID = runnerGroupID
        self.labels = labels
    }
}

/// A registered JIT runner and its single-use configuration.
public struct JITConfig: Sendable {
    public var runnerID: Int64
    public var runnerName: String
    /// `encoded_jit_config`: it registers a runner, so it is a secret.
    public var encodedConfig: Secret
}

/// The GitHub REST calls provisioning needs (repository runners).
public protocol GitHubAPI: Sendable {
    func job(owner: String, repo: String, id: Int64) async throws(GitHubAPIError) -> GitHubJob
    func generateJITConfig(
        owner: String,
        repo: String,
        _ request: JITConfigRequest
    ) async throws(GitHubAPIError) -> JITConfig
    func deleteRunner(owner: String, repo: String, runnerID: Int64) async throws(GitHubAPIError)
}
