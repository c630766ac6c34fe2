/// A workflow job as `GET /repos/{owner}/{repo}/actions/jobs/{job_id}` describes it.
public struct GitHubJob: Sendable, Equatable, Decodable {
    public var id: Int64
    public var runID: Int64?
    public var name: String?
    /// RFC 3339; when the job was queued.
    public var createdAt: String?
    /// `queued`, `in_progress`, `completed`, `waiting`, `requested` or `pending`.
    public var status: String
    public var conclusion: String?
    public var runnerName: String?
    public var labels: [String]

    enum CodingKeys: String, CodingKey {
        case id, status, conclusion, labels, name
        case runnerName = "runner_name"
        case runID = "run_id"
        case createdAt = "created_at"
    }

    public init(
        id: Int64,
        status: String,
        conclusion: String? = nil,
        runnerName: String? = nil,
        labels: [String],
        runID: Int64? = nil,
        name: String? = nil,
        createdAt: String? = nil
    ) {
        self.id = id
        self.status = status
        self.conclusion = conclusion
        self.runnerName = runnerName
        self.labels = labels
        self.runID = runID
        self.name = name
        self.createdAt = createdAt
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

/// A workflow run, as listed by `GET /repos/{owner}/{repo}/actions/runs`.
public struct WorkflowRun: Sendable, Equatable, Decodable {
    public var id: Int64
    public var status: String?

    public init(id: Int64, status: String?) {
        self.id = id
        self.status = status
    }
}

/// A self-hosted runner registered to a repository.
public struct RegisteredRunner: Sendable, Equatable, Decodable {
    public var id: Int64
    public var name: String
    /// `online` or `offline`.
    public var status: String?
    public var busy: Bool?
    public var labels: [String]

    public init(id: Int64, name: String, status: String? = nil, busy: Bool? = nil, labels: [String] = []) {
        self.id = id
        self.name = name
        self.status = status
        self.busy = busy
        self.labels = labels
    }

    enum CodingKeys: String, CodingKey { case id, name, status, busy, labels }
    struct Label: Decodable { var name: String }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(Int64.self, forKey: .id)
        name = try container.decode(String.self, forKey: .name)
        status = try container.decodeIfPresent(String.self, forKey: .status)
        busy = try container.decodeIfPresent(Bool.self, forKey: .busy)
        labels = (try container.decodeIfPresent([Label].self, forKey: .labels) ?? []).map(\.name)
    }
}

/// How much of a GitHub list is read: every page, up to this many items. A list of this length may go on: what
/// reads it must not treat an item missing from it as gone.
public enum GitHubListing {
    public static let limit = 1_000
}

/// The GitHub REST calls provisioning and reconciliation need (repository runners).
public protocol GitHubAPI: Sendable {
    func job(owner: String, repo: String, id: Int64) async throws(GitHubAPIError) -> GitHubJob
    /// Runs in a status (`queued`, `in_progress`), newest first, every page up to `GitHubListing.limit`.
    func runs(owner: String, repo: String, status: String) async throws(GitHubAPIError) -> [WorkflowRun]
    /// The jobs of a run's latest attempt, every page up to `GitHubListing.limit`.
    func jobs(owner: String, repo: String, runID: Int64) async throws(GitHubAPIError) -> [GitHubJob]
    func generateJITConfig(
        owner: String,
        repo: String,
        _ request: JITConfigRequest
    ) async throws(GitHubAPIError) -> JITConfig
    func deleteRunner(owner: String, repo: String, runnerID: Int64) async throws(GitHubAPIError)
    /// The repository's self-hosted runners, every page up to `GitHubListing.limit`.
    func runners(owner: String, repo: String) async throws(GitHubAPIError) -> [RegisteredRunner]
    /// One registration as GitHub sees it now (busy or not); nil when it no longer exists (404). The reapers call
    /// it just before deleting anything, as the fresh check that no runner is at work on it.
    func runner(owner: String, repo: String, id: Int64) async throws(GitHubAPIError) -> RegisteredRunner?
}

extension RegisteredRunner {
    /// Whether the registration carries `label` (GitHub compares labels case-insensitively).
    public func carries(_ label: String) -> Bool {
        labels.contains { $0.lowercased() == label.lowercased() }
    }
}
