import HTTPClient
import Logging
import Observability
import Support
import Synchronization

/// `GitHubAPI` over an `HTTPTransport`, with GitHub's headers, metrics and rate-limit handling.
///
/// Every call is made with the credential `GitHubCredentials` gives for its owner: one token, a token per owner,
/// or a GitHub App installation's token. Every call is counted in `github_api_requests_total{endpoint,status}`,
/// and `x-ratelimit-remaining` goes to `github_api_rate_limit_remaining{owner}` for the credential's window. After
/// a rate-limit answer, calls with that credential fail at once (without a request) until the reset GitHub gave:
/// GitHub asks clients not to keep calling while limited. Other credentials' calls go on.
package final class GitHubClient: GitHubAPI {
    package struct Configuration: Sendable {
        /// `https://api.github.com`, or `https://HOST/api/v3` for GHES: every path goes after it.
        package var baseURL: String
        package var credentials: any GitHubCredentials
        /// Per-call timeout; the webhook's overall deadline bounds the sum.
        package var timeout: Duration = .seconds(4)
        /// Bytes the answers of conditional requests may take (URL, ETag and body each count; the least recently
        /// used go first) (`GITHUB_ETAG_CACHE_BYTES`).
        package var etagCacheBytes: Int

        /// 8 MiB: 1,000 repositories' lists at a few kilobytes each, twice over, well inside the pod's 128 MiB limit.
        package static let defaultETagCacheBytes = 8 << 20

        package init(
            baseURL: String,
            credentials: any GitHubCredentials,
            timeout: Duration = .seconds(4),
            etagCacheBytes: Int = Configuration.defaultETagCacheBytes
        ) {
            self.baseURL = baseURL
            self.credentials = credentials
            self.timeout = timeout
            self.etagCacheBytes = etagCacheBytes
        }

        /// One token for every call (`GITHUB_TOKEN`).
        package init(
            baseURL: String,
            token: Secret,
            timeout: Duration = .seconds(4),
            etagCacheBytes: Int = Configuration.defaultETagCacheBytes
        ) {
            self.init(
                baseURL: baseURL,
                credentials: GitHubTokens(token),
                timeout: timeout,
                etagCacheBytes: etagCacheBytes
            )
        }
    }

    enum Endpoint: String {
        case getJob = "GET /repos/{owner}/{repo}/actions/jobs/{job_id}"
        case generateJITConfig = "POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig"
        case deleteRunner = "DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}"
        case listRuns = "GET /repos/{owner}/{repo}/actions/runs"
        case listRunJobs = "GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs"
        case listRunners = "GET /repos/{owner}/{repo}/actions/runners"
        case getRunner = "GET /repos/{owner}/{repo}/actions/runners/{runner_id}"
        case generateOrganizationJITConfig = "POST /orgs/{org}/actions/runners/generate-jitconfig"
        case deleteOrganizationRunner = "DELETE /orgs/{org}/actions/runners/{runner_id}"
        case listOrganizationRunners = "GET /orgs/{org}/actions/runners"
        case getOrganizationRunner = "GET /orgs/{org}/actions/runners/{runner_id}"
        case listRunnerGroups = "GET /orgs/{org}/actions/runner-groups"
        case listRepositoryHookDeliveries = "GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries"
        case listOrganizationHookDeliveries = "GET /orgs/{org}/hooks/{hook_id}/deliveries"
        case listAppHookDeliveries = "GET /app/hook/deliveries"
        case redeliverRepositoryHookDelivery =
            "POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts"
        case redeliverOrganizationHookDelivery = "POST /orgs/{org}/hooks/{hook_id}/deliveries/{delivery_id}/attempts"
        case redeliverAppHookDelivery = "POST /app/hook/deliveries/{delivery_id}/attempts"
    }

    private let configuration: Configuration
    private let requester: GitHubRequester
    private let metrics: Metrics?
    private let logger: Logger
    /// Epoch seconds on the injected clock (`MonotonicClock.epochSeconds`): GitHub's reset is an epoch second, and a
    /// step of the system clock neither shortens nor stretches a pause.
    private let clock: @Sendable () -> Double
    /// Rate-limit windows, one per credential; one client serves every path of the process (deliveries and the
    /// reconciler), so a window's pause holds for all of them.
    private let limits = GitHubRateLimits()
    /// Conditional requests: a 304 answer does not count against the primary rate limit.
    package let etags: ETagCache

    /// The lowest `x-ratelimit-remaining` GitHub last said over every credential used so far (the reconciler's
    /// budget with one token); nil before the first answer.
    package var rateLimitRemaining: Int64? { limits.lowestRemaining }

    /// Requests left in the window of the credential that serves `owner`; nil until a call for it was answered.
    package func rateLimitRemaining(owner: String) -> Int64? { limits.remaining(owner: owner) }

    /// The credentials every call is made with (the composition root tells them about verified installations).
    package var credentials: any GitHubCredentials { configuration.credentials }

    package convenience init(
        configuration: Configuration,
        transport: any HTTPTransport,
        metrics: Metrics?,
        logger: Logger,
        clock: some Clock<Duration> = ContinuousClock()
    ) {
        let clock = MonotonicClock(clock)
        self.init(
            configuration: configuration,
            transport: transport,
            metrics: metrics,
            logger: logger,
            epochSeconds: { clock.epochSeconds }
        )
    }

    /// The same, reading epoch seconds from `epochSeconds`: for a test whose GitHub double keeps its own epoch
    /// time, shared with the App's credentials.
    package init(
        configuration: Configuration,
        transport: any HTTPTransport,
        metrics: Metrics?,
        logger: Logger,
        epochSeconds: @escaping @Sendable () -> Double
    ) {
        self.configuration = configuration
        etags = ETagCache(byteLimit: configuration.etagCacheBytes)
        requester = GitHubRequester(
            baseURL: configuration.baseURL,
            transport: transport,
            timeout: configuration.timeout,
            metrics: metrics
        )
        self.metrics = metrics
        self.logger = logger
        self.clock = epochSeconds
        for owner in configuration.credentials.knownRateLimitOwners {
            metrics?.registerGitHubRateLimit(owner: owner)
        }
    }

    /// Epoch seconds on the process's monotonic clock (its wall time read once): the default of the App's
    /// credentials, whose token expiries and JWT times are epoch seconds too.
    static let steadyEpochSeconds: @Sendable () -> Double = {
        let clock = MonotonicClock(ContinuousClock())
        return { clock.epochSeconds }
    }()

    /// Validates the credentials once (start-up): what will not work, and why. Probes at most a few of
    /// `repositories` (owner/name) and `owners` with read-only calls; with `deliveries`, whether a token may read
    /// webhook deliveries too (the redelivery of failed deliveries).
    package func checkCredentials(
        scope: RunnerScope,
        repositories: [GitHubCredentialCheck.Repository] = [],
        owners: [String] = [],
        deliveries: Bool = false
    ) async -> [GitHubCredentialFinding] {
        await configuration.credentials.check(
            GitHubCredentialCheck(
                scope: scope,
                repositories: repositories,
                owners: owners,
                deliveries: deliveries,
                requester: requester,
                clock: clock
            )
        )
    }

    package func job(owner: String, repo: String, id: Int64) async throws(GitHubAPIError) -> GitHubJob {
        let response = try await call(
            .getJob,
            owner: owner,
            repo: repo,
            path: "/repos/\(segment(owner))/\(segment(repo))/actions/jobs/\(id)"
        )
        if let job = GitHubJob.fastDecode(response.body) { return job }
        return try decode(GitHubJob.self, from: response, endpoint: .getJob)
    }

    package func generateJITConfig(
        owner: String,
        repo: String,
        scope: RunnerScope,
        _ request: JITConfigRequest
    ) async throws(GitHubAPIError)
        -> JITConfig
    {
        let body: JSONValue = .object([
            ("name", .string(request.name)),
            ("runner_group_id", .int(request.runnerGroupID)),
            ("labels", .array(request.labels.map { .string($0) })),
            ("work_folder", .string(request.workFolder)),
        ])
        let endpoint: Endpoint = scope == .organization ? .generateOrganizationJITConfig : .generateJITConfig
        let response = try await call(
            endpoint,
            owner: owner,
            repo: repo,
            path: runnersPath(owner: owner, repo: repo, scope: scope) + "/generate-jitconfig",
            body: body.renderedBytes()
        )
        struct Answer: Decodable {
            struct Runner: Decodable {
                var id: Int64
                var name: String
            }
            var runner: Runner
            var encodedJITConfig: String

            enum CodingKeys: String, CodingKey {
                case runner
                case encodedJITConfig = "encoded_jit_config"
            }
        }
        if let fields = JSONFields(response.body, paths: Self.jitConfigFields), fields.isObject(3),
            let id = fields.int64(0), let name = fields.string(1), let config = fields.string(2)
        {
            return JITConfig(runnerID: id, runnerName: name, encodedConfig: Secret(config))
        }
        let answer = try decode(Answer.self, from: response, endpoint: endpoint)
        return JITConfig(
            runnerID: answer.runner.id,
            runnerName: answer.runner.name,
            encodedConfig: Secret(answer.encodedJITConfig)
        )
    }

    /// What `generateJITConfig` reads of the answer, without decoding the rest (the runner's labels and status).
    private static let jitConfigFields = JSONFields.Paths([
        ["runner", "id"], ["runner", "name"], ["encoded_jit_config"], ["runner"],
    ])

    package func runs(owner: String, repo: String, status: String) async throws(GitHubAPIError) -> [WorkflowRun] {
        struct Page: Decodable {
            var workflowRuns: [WorkflowRun]
            enum CodingKeys: String, CodingKey { case workflowRuns = "workflow_runs" }
        }
        return try await everyPage(
            .listRuns,
            owner: owner,
            repo: repo,
            path: "/repos/\(segment(owner))/\(segment(repo))/actions/runs?status=\(status)&per_page=100"
        ) { (response) throws(GitHubAPIError) in
            try decode(Page.self, from: response, endpoint: .listRuns).workflowRuns
        }
    }

    package func jobs(owner: String, repo: String, runID: Int64) async throws(GitHubAPIError) -> [GitHubJob] {
        struct Page: Decodable { var jobs: [GitHubJob] }
        return try await everyPage(
            .listRunJobs,
            owner: owner,
            repo: repo,
            path: "/repos/\(segment(owner))/\(segment(repo))/actions/runs/\(runID)/jobs?filter=latest&per_page=100"
        ) { (response) throws(GitHubAPIError) in
            try decode(Page.self, from: response, endpoint: .listRunJobs).jobs
        }
    }

    package func runners(
        owner: String,
        repo: String,
        scope: RunnerScope
    ) async throws(GitHubAPIError) -> [RegisteredRunner] {
        struct Page: Decodable { var runners: [RegisteredRunner] }
        let endpoint: Endpoint = scope == .organization ? .listOrganizationRunners : .listRunners
        return try await everyPage(
            endpoint,
            owner: owner,
            repo: repo,
            path: runnersPath(owner: owner, repo: repo, scope: scope) + "?per_page=100"
        ) { (response) throws(GitHubAPIError) in
            try decode(Page.self, from: response, endpoint: endpoint).runners
        }
    }

    package func runner(
        owner: String,
        repo: String,
        scope: RunnerScope,
        id: Int64
    ) async throws(GitHubAPIError) -> RegisteredRunner? {
        let endpoint: Endpoint = scope == .organization ? .getOrganizationRunner : .getRunner
        do {
            // Never from the ETag cache: this is the fresh look before a deletion.
            let response = try await call(
                endpoint,
                owner: owner,
                repo: repo,
                path: runnersPath(owner: owner, repo: repo, scope: scope) + "/\(id)",
                conditional: false
            )
            return try decode(RegisteredRunner.self, from: response, endpoint: endpoint)
        } catch  where error.kind == .notFound {
            return nil
        }
    }

    package func deleteRunner(
        owner: String,
        repo: String,
        scope: RunnerScope,
        runnerID: Int64
    ) async throws(GitHubAPIError) {
        _ = try await call(
            scope == .organization ? .deleteOrganizationRunner : .deleteRunner,
            owner: owner,
            repo: repo,
            path: runnersPath(owner: owner, repo: repo, scope: scope) + "/\(runnerID)"
        )
    }

    package func runnerGroups(organization: String) async throws(GitHubAPIError) -> [RunnerGroup] {
        struct Page: Decodable {
            var runnerGroups: [RunnerGroup]
            enum CodingKeys: String, CodingKey { case runnerGroups = "runner_groups" }
        }
        return try await everyPage(
            .listRunnerGroups,
            owner: organization,
            repo: nil,
            path: "/orgs/\(segment(organization))/actions/runner-groups?per_page=100"
        ) { (response) throws(GitHubAPIError) in
            try decode(Page.self, from: response, endpoint: .listRunnerGroups).runnerGroups
        }
    }

    package func hookDeliveries(
        _ hook: WebhookHook,
        perPage: Int,
        cursor: String?
    ) async throws(GitHubAPIError) -> HookDeliveryPage {
        let endpoint: Endpoint
        let owner: String
        let repo: String?
        let base: String
        switch hook {
        case .repository(let hookOwner, let hookRepo, let id):
            (endpoint, owner, repo) = (.listRepositoryHookDeliveries, hookOwner, hookRepo)
            base = "/repos/\(segment(hookOwner))/\(segment(hookRepo))/hooks/\(id)/deliveries"
        case .organization(let org, let id):
            (endpoint, owner, repo) = (.listOrganizationHookDeliveries, org, nil)
            base = "/orgs/\(segment(org))/hooks/\(id)/deliveries"
        case .app:
            (endpoint, owner, repo) = (.listAppHookDeliveries, "", nil)
            base = "/app/hook/deliveries"
        }
        var path = base + "?per_page=\(min(max(perPage, 1), 100))"
        // As GitHub's `Link` gave it: already encoded for the query.
        if let cursor { path += "&cursor=\(cursor)" }
        let response: HTTPClientResponse
        if hook == .app {
            response = try await appCall(endpoint, path: path)
        } else {
            // Never from the ETag cache: a failed delivery must be seen as soon as it is listed.
            response = try await call(endpoint, owner: owner, repo: repo, path: path, conditional: false)
        }
        let deliveries = try decode([HookDelivery].self, from: response, endpoint: endpoint)
        return HookDeliveryPage(
            deliveries: deliveries,
            nextCursor: Self.nextPage(response.header("link"), under: requester.baseURL).flatMap(Self.cursor(in:))
        )
    }

    package func redeliver(_ hook: WebhookHook, deliveryID: Int64) async throws(GitHubAPIError) {
        switch hook {
        case .repository(let owner, let repo, let id):
            _ = try await call(
                .redeliverRepositoryHookDelivery,
                owner: owner,
                repo: repo,
                path: "/repos/\(segment(owner))/\(segment(repo))/hooks/\(id)/deliveries/\(deliveryID)/attempts"
            )
        case .organization(let org, let id):
            _ = try await call(
                .redeliverOrganizationHookDelivery,
                owner: org,
                repo: nil,
                path: "/orgs/\(segment(org))/hooks/\(id)/deliveries/\(deliveryID)/attempts"
            )
        case .app:
            _ = try await appCall(.redeliverAppHookDelivery, path: "/app/hook/deliveries/\(deliveryID)/attempts")
        }
    }

    /// A call as the App itself (its JWT): only GitHub App credentials can make one.
    private func appCall(_ endpoint: Endpoint, path: String) async throws(GitHubAPIError) -> HTTPClientResponse {
        guard let app = configuration.credentials as? GitHubAppCredentials else {
            throw GitHubAPIError(
                endpoint: endpoint.rawValue,
                kind: .forbidden,
                status: 403,
                message: "the App's hook is read with a GitHub App's JWT: set GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY"
            )
        }
        return try await app.appCall(endpoint.rawValue, path: path)
    }

    /// The `cursor` query parameter of a page's path, as encoded there (the deliveries lists page by cursor).
    static func cursor(in path: String) -> String? {
        guard let query = path.split(separator: "?", maxSplits: 1).dropFirst().first else { return nil }
        for parameter in query.split(separator: "&") where parameter.hasPrefix("cursor=") {
            return String(parameter.dropFirst("cursor=".count))
        }
        return nil
    }

    /// `/repos/{owner}/{repo}/actions/runners`, or `/orgs/{owner}/actions/runners` for organization runners.
    private func runnersPath(owner: String, repo: String, scope: RunnerScope) -> String {
        switch scope {
        case .repository: "/repos/\(segment(owner))/\(segment(repo))/actions/runners"
        case .organization: "/orgs/\(segment(owner))/actions/runners"
        }
    }

    // MARK: - Calls

    /// Every page of a list: follows `Link: <…>; rel="next"` while it points under `baseURL` (the token is sent to
    /// no other address), up to `GitHubListing.limit` items. Each page is a conditional request of its own.
    private func everyPage<Item>(
        _ endpoint: Endpoint,
        owner: String,
        repo: String?,
        path: String,
        items: (HTTPClientResponse) throws(GitHubAPIError) -> [Item]
    ) async throws(GitHubAPIError) -> [Item] {
        var all: [Item] = []
        var next: String? = path
        while let current = next, all.count < GitHubListing.limit {
            let response = try await call(endpoint, owner: owner, repo: repo, path: current)
            all += try items(response)
            next = Self.nextPage(response.header("link"), under: requester.baseURL)
        }
        return all
    }

    /// The path of the `rel="next"` target of a `Link` header, relative to `baseURL`; nil without one, or when it
    /// points anywhere else.
    static func nextPage(_ link: String?, under baseURL: String) -> String? {
        guard let link else { return nil }
        for entry in link.split(separator: ",") {
            let fields = entry.split(separator: ";").map { field in
                field.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()
            }
            guard fields.dropFirst().contains(where: { String($0) == #"rel="next""# }),
                let target = fields.first.map(String.init), target.hasPrefix("<"), target.hasSuffix(">")
            else { continue }
            let url = target.dropFirst().dropLast()
            guard url.hasPrefix(baseURL + "/") || url.hasPrefix(baseURL + "?") else { return nil }
            return String(url.dropFirst(baseURL.count))
        }
        return nil
    }

    /// One call with the owner's credential. A 401 on a credential the credentials had cached (an installation
    /// token) is retried once with a fresh one.
    private func call(
        _ endpoint: Endpoint,
        owner: String,
        repo: String?,
        path: String,
        body: [UInt8]? = nil,
        conditional: Bool = true
    ) async throws(GitHubAPIError)
        -> HTTPClientResponse
    {
        let credentials = configuration.credentials
        var credential = try await credentials.credential(owner: owner, repository: repo)
        var retried = false
        while true {
            limits.remember(owner: owner, key: credential.rateLimitKey)
            let response = try await send(endpoint, path: path, body: body, conditional: conditional, as: credential)
            if response.status == 401, !retried, await credentials.rejected(credential) {
                logger.info(
                    "GitHub rejected a cached credential; retrying with a fresh one",
                    metadata: ["endpoint": "\(endpoint.rawValue)", "owner": "\(credential.rateLimitOwner)"]
                )
                retried = true
                credential = try await credentials.credential(owner: owner, repository: repo)
                continue
            }
            return try accept(response, endpoint: endpoint, as: credential)
        }
    }

    /// Sends the request unless the credential's window is paused; records what GitHub said of the window.
    private func send(
        _ endpoint: Endpoint,
        path: String,
        body: [UInt8]?,
        conditional: Bool,
        as credential: GitHubCredential
    ) async throws(GitHubAPIError) -> HTTPClientResponse {
        let until = limits.pausedUntil(credential.rateLimitKey)
        if clock() < until {
            throw GitHubAPIError(
                endpoint: endpoint.rawValue,
                kind: .rateLimited,
                message: "not called: still rate limited",
                retryAt: Int64(until.rounded(.up))
            )
        }
        let method = String(endpoint.rawValue.prefix { $0 != " " })
        let url = requester.baseURL + path
        let cached = method == "GET" && conditional ? etags.entry(for: url) : nil
        let response = try await requester.send(
            endpoint.rawValue,
            path: path,
            authorization: credential.authorization,
            body: body,
            headers: cached.map { [("If-None-Match", $0.etag)] } ?? []
        )
        if let remaining = response.header("x-ratelimit-remaining").flatMap({ Int64($0) }) {
            metrics?.setGitHubRateLimitRemaining(remaining, owner: credential.rateLimitOwner)
            limits.record(remaining: remaining, key: credential.rateLimitKey)
            // The last request of the window succeeded: every further one would be refused until the reset.
            if remaining == 0, (200..<300).contains(response.status) || response.status == 304,
                let reset = response.header("x-ratelimit-reset").flatMap({ Int64($0) })
            {
                limits.pause(credential.rateLimitKey, until: Double(reset) + 1)
            }
        }
        if response.status == 304, let cached {
            return HTTPClientResponse(status: 200, headers: response.headers, body: cached.body)
        }
        if (200..<300).contains(response.status), method == "GET", let etag = response.header("etag") {
            etags.store(ETagCache.Entry(etag: etag, body: response.body), for: url)
        }
        return response
    }

    /// A 2xx answer as it is, else the error its status means (a rate limit pauses the credential's window).
    private func accept(
        _ response: HTTPClientResponse,
        endpoint: Endpoint,
        as credential: GitHubCredential
    ) throws(GitHubAPIError) -> HTTPClientResponse {
        if (200..<300).contains(response.status) { return response }
        let (error, pauseUntil) = GitHubRequester.error(for: response, endpoint: endpoint.rawValue, now: clock())
        if let pauseUntil {
            limits.pause(credential.rateLimitKey, until: pauseUntil)
            logger.warning(
                "GitHub rate limit reached",
                metadata: [
                    "endpoint": "\(endpoint.rawValue)", "owner": "\(credential.rateLimitOwner)",
                    "resets_at": "\(Timestamps.seconds(error.retryAt ?? Int64(pauseUntil)))",
                    "message": "\(error.message)",
                ]
            )
        }
        throw error
    }

    private func decode<T: Decodable>(
        _ type: T.Type,
        from response: HTTPClientResponse,
        endpoint: Endpoint
    )
        throws(GitHubAPIError) -> T
    {
        try GitHubRequester.decode(type, from: response, endpoint: endpoint.rawValue)
    }

    /// One path segment, percent-encoded (owner and repository names are nearly always safe already).
    private func segment(_ text: String) -> String {
        percentEncode(text)
    }
}
