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

    /// The fields read (by index in `fastDecode`), and the object they are in.
    private static let fieldPaths = JSONFields.Paths([
        ["id"], ["status"], ["conclusion"], ["runner_name"], ["labels"], ["run_id"], ["name"], ["created_at"],
    ])

    /// The job when every field is in its plainest form (`JSONFields`: strings without escapes, integers in
    /// digits), without decoding the rest of the answer (3 KB of URLs and steps); nil leaves it to `JSONDecoder`,
    /// which gives the same value or the same error it always did.
    static func fastDecode(_ body: [UInt8]) -> GitHubJob? {
        guard let fields = JSONFields(body, paths: fieldPaths) else { return nil }
        func optional(_ index: Int) -> String?? {
            fields.isAbsentOrNull(index) ? .some(nil) : fields.string(index).map { .some($0) }
        }
        guard let id = fields.int64(0), let status = fields.string(1), let conclusion = optional(2),
            let runnerName = optional(3), let labels = fields.strings(4), let name = optional(6),
            let createdAt = optional(7)
        else { return nil }
        var runID: Int64?
        if !fields.isAbsentOrNull(5) {
            guard let value = fields.int64(5) else { return nil }
            runID = value
        }
        return GitHubJob(
            id: id,
            status: status,
            conclusion: conclusion,
            runnerName: runnerName,
            labels: labels,
            runID: runID,
            name: name,
            createdAt: createdAt
        )
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

/// Where runners are registered: to one repository, or to the organization that owns it (`RUNNER_SCOPE`).
package enum RunnerScope: String, Sendable, CaseIterable {
    /// `/repos/{owner}/{repo}/actions/runners…`: the runner serves that repository only.
    case repository = "repo"
    /// `/orgs/{org}/actions/runners…`: the runner joins a runner group of the organization.
    case organization = "org"
}

/// A runner group of an organization, as `GET /orgs/{org}/actions/runner-groups` lists it.
package struct RunnerGroup: Sendable, Equatable, Decodable {
    package var id: Int
    package var name: String
    /// `all`, `selected` or `private`.
    package var visibility: String?
    /// The organization's default group (every organization has one; its id is 1 on github.com).
    package var isDefault: Bool?

    package init(id: Int, name: String, visibility: String? = nil, isDefault: Bool? = nil) {
        self.id = id
        self.name = name
        self.visibility = visibility
        self.isDefault = isDefault
    }

    enum CodingKeys: String, CodingKey {
        case id, name, visibility
        case isDefault = "default"
    }
}

/// The GitHub REST calls provisioning and reconciliation need.
///
/// Runner calls take a `RunnerScope`: for `.organization` the runner lives at the owner's organization and `repo`
/// only says which job it is for. The extension below keeps the repository-scoped spellings.
package protocol GitHubAPI: Sendable {
    func job(owner: String, repo: String, id: Int64) async throws(GitHubAPIError) -> GitHubJob
    /// Runs in a status (`queued`, `in_progress`), newest first, every page up to `GitHubListing.limit`.
    func runs(owner: String, repo: String, status: String) async throws(GitHubAPIError) -> [WorkflowRun]
    /// The jobs of a run's latest attempt, every page up to `GitHubListing.limit`.
    func jobs(owner: String, repo: String, runID: Int64) async throws(GitHubAPIError) -> [GitHubJob]
    func generateJITConfig(
        owner: String,
        repo: String,
        scope: RunnerScope,
        _ request: JITConfigRequest
    ) async throws(GitHubAPIError) -> JITConfig
    func deleteRunner(owner: String, repo: String, scope: RunnerScope, runnerID: Int64) async throws(GitHubAPIError)
    /// The self-hosted runners of the repository (or organization), every page up to `GitHubListing.limit`.
    func runners(owner: String, repo: String, scope: RunnerScope) async throws(GitHubAPIError) -> [RegisteredRunner]
    /// One registration as GitHub sees it now (busy or not); nil when it no longer exists (404). The reapers call
    /// it just before deleting anything, as the fresh check that no runner is at work on it.
    func runner(
        owner: String,
        repo: String,
        scope: RunnerScope,
        id: Int64
    ) async throws(GitHubAPIError) -> RegisteredRunner?
    /// The organization's runner groups, every page up to `GitHubListing.limit`.
    func runnerGroups(organization: String) async throws(GitHubAPIError) -> [RunnerGroup]
    /// One page of `hook`'s deliveries, newest first (`per_page` at most 100), from `cursor` (nil: the first page).
    func hookDeliveries(
        _ hook: WebhookHook,
        perPage: Int,
        cursor: String?
    ) async throws(GitHubAPIError) -> HookDeliveryPage
    /// Asks GitHub to deliver `deliveryID` of `hook` again (`POST …/deliveries/{delivery_id}/attempts`, 202).
    func redeliver(_ hook: WebhookHook, deliveryID: Int64) async throws(GitHubAPIError)
}

extension GitHubAPI {
    /// A repository runner's JIT configuration.
    package func generateJITConfig(
        owner: String,
        repo: String,
        _ request: JITConfigRequest
    ) async throws(GitHubAPIError) -> JITConfig {
        try await generateJITConfig(owner: owner, repo: repo, scope: .repository, request)
    }

    package func deleteRunner(owner: String, repo: String, runnerID: Int64) async throws(GitHubAPIError) {
        try await deleteRunner(owner: owner, repo: repo, scope: .repository, runnerID: runnerID)
    }

    package func runners(owner: String, repo: String) async throws(GitHubAPIError) -> [RegisteredRunner] {
        try await runners(owner: owner, repo: repo, scope: .repository)
    }

    package func runner(owner: String, repo: String, id: Int64) async throws(GitHubAPIError) -> RegisteredRunner? {
        try await runner(owner: owner, repo: repo, scope: .repository, id: id)
    }

    /// The id of the organization's runner group called `name` (`RUNNER_GROUP`): an exact match, else the one
    /// match ignoring case. A name that matches no group is a `.validation` error that lists the groups there are.
    package func runnerGroupID(named name: String, organization: String) async throws(GitHubAPIError) -> Int {
        let groups = try await runnerGroups(organization: organization)
        if let exact = groups.first(where: { $0.name == name }) { return exact.id }
        let folded = groups.filter { $0.name.lowercased() == name.lowercased() }
        if folded.count == 1 { return folded[0].id }
        throw GitHubAPIError(
            endpoint: "GET /orgs/{org}/actions/runner-groups",
            kind: .validation,
            message:
                "organization \(organization) has no runner group named \"\(name)\" (it has: \(groups.map(\.name).joined(separator: ", ")))"
        )
    }
}

extension RegisteredRunner {
    /// Whether the registration carries `label` (GitHub compares labels case-insensitively).
    package func carries(_ label: String) -> Bool {
        labels.contains { $0.lowercased() == label.lowercased() }
    }
}
