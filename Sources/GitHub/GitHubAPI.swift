import Support

/// A workflow job as `GET /repos/{owner}/{repo}/actions/jobs/{job_id}` describes it.
package struct GitHubJob: Sendable, Equatable, Decodable {
    package var id: Int64
    package var runID: Int64?
    package var name: String?
    /// RFC 3339; when the job was queued.
    package var createdAt: String?
    /// `queued`, `in_progress`, `completed`, `waiting`, `requested` or `pending`.
    package var status: String
    package var conclusion: String?
    package var runnerName: String?
    package var labels: [String]

    enum CodingKeys: String, CodingKey {
        case id, status, conclusion, labels, name
        case runnerName = "runner_name"
        case runID = "run_id"
        case createdAt = "created_at"
    }

    package init(
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
    package var isWaitingForRunner: Bool {
        ["queued", "waiting", "requested", "pending"].contains(status)
    }
}

/// What to register: one ephemeral runner for one job.
package struct JITConfigRequest: Sendable, Equatable {
    package var name: String
    package var runnerGroupID: Int
    package var labels: [String]
    package var workFolder = "_work"

    package init(name: String, runnerGroupID: Int, labels: [String]) {
        self.name = name
        self.runnerGroupID = runnerGroupID
        self.labels = labels
    }
}

/// A registered JIT runner and its single-use configuration.
package struct JITConfig: Sendable {
    package var runnerID: Int64
    package var runnerName: String
    /// `encoded_jit_config`: it registers a runner, so it is a secret.
    package var encodedConfig: Secret

    package init(runnerID: Int64, runnerName: String, encodedConfig: Secret) {
        self.runnerID = runnerID
        self.runnerName = runnerName
        self.encodedConfig = encodedConfig
    }
}

/// A workflow run, as listed by `GET /repos/{owner}/{repo}/actions/runs`.
package struct WorkflowRun: Sendable, Equatable, Decodable {
    package var id: Int64
    package var status: String?

    package init(id: Int64, status: String?) {
        self.id = id
        self.status = status
    }
}

/// A self-hosted runner registered to a repository.
package struct RegisteredRunner: Sendable, Equatable, Decodable {
    package var id: Int64
    package var name: String
    /// `online` or `offline`.
    package var status: String?
    package var busy: Bool?
    package var labels: [String]

    package init(id: Int64, name: String, status: String? = nil, busy: Bool? = nil, labels: [String] = []) {
        self.id = id
        self.name = name
        self.status = status
        self.busy = busy
        self.labels = labels
    }

    enum CodingKeys: String, CodingKey { case id, name, status, busy, labels }
    struct Label: Decodable { var name: String }

    package init(from decoder: any Decoder) throws {
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
package enum GitHubListing {
    package static let limit = 1_000
}

/// The GitHub REST calls provisioning and reconciliation need (repository runners).
package protocol GitHubAPI: Sendable {
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
    package func carries(_ label: String) -> Bool {
        labels.contains { $0.lowercased() == label.lowercased() }
    }
}
