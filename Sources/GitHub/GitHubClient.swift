import HTTPClient
import Logging
import Observability
import Support
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `GitHubAPI` over an `HTTPTransport`, with GitHub's headers, metrics and rate-limit handling.
///
/// Every call is counted in `github_api_requests_total{endpoint,status}` and `x-ratelimit-remaining` goes to
/// `github_api_rate_limit_remaining`. After a rate-limit answer, calls fail at once (without a request) until
/// the reset GitHub gave: GitHub asks clients not to keep calling while limited.
package final class GitHubClient: GitHubAPI {
    package struct Configuration: Sendable {
        /// `https://api.github.com`, or `https://HOST/api/v3` for GHES.
        package var baseURL: String
        package var token: Secret
        /// Per-call timeout; the webhook's overall deadline bounds the sum.
        package var timeout: Duration = .seconds(4)

        package init(baseURL: String, token: Secret, timeout: Duration = .seconds(4)) {
            self.baseURL = baseURL
            self.token = token
            self.timeout = timeout
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
    }

    private let configuration: Configuration
    private let transport: any HTTPTransport
    private let metrics: Metrics?
    private let logger: Logger
    /// Rate-limit windows are compared in its `epochSeconds`: GitHub's reset is an epoch second, and a step of the
    /// system clock neither shortens nor stretches a pause.
    private let clock: MonotonicClock
    /// Epoch seconds until which calls are refused (rate limited); one client serves every path of the process
    /// (deliveries and the reconciler), so this is the whole process's pause.
    private let limitedUntil = Mutex<Double>(0)
    /// Conditional requests: a 304 answer does not count against the primary rate limit.
    private let etags = Mutex<[String: (etag: String, body: [UInt8])]>([:])
    /// The last `x-ratelimit-remaining`, for callers that budget their calls (the reconciler).
    private let remaining = Mutex<Int64?>(nil)

    /// Requests left in the current rate-limit window, as GitHub last said; nil before the first answer.
    package var rateLimitRemaining: Int64? { remaining.withLock { $0 } }

    package init(
        configuration: Configuration,
        transport: any HTTPTransport,
        metrics: Metrics?,
        logger: Logger,
        clock: some Clock<Duration> = ContinuousClock()
    ) {
        self.configuration = configuration
        self.transport = transport
        self.metrics = metrics
        self.logger = logger
        self.clock = MonotonicClock(clock)
    }

    package func job(owner: String, repo: String, id: Int64) async throws(GitHubAPIError) -> GitHubJob {
        let response = try await call(.getJob, path: "/repos/\(segment(owner))/\(segment(repo))/actions/jobs/\(id)")
        return try decode(GitHubJob.self, from: response, endpoint: .getJob)
    }

    package func generateJITConfig(
        owner: String,
        repo: String,
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
        let response = try await call(
            .generateJITConfig,
            path: "/repos/\(segment(owner))/\(segment(repo))/actions/runners/generate-jitconfig",
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
        let answer = try decode(Answer.self, from: response, endpoint: .generateJITConfig)
        return JITConfig(
            runnerID: answer.runner.id,
            runnerName: answer.runner.name,
            encodedConfig: Secret(answer.encodedJITConfig)
        )
    }

    package func runs(owner: String, repo: String, status: String) async throws(GitHubAPIError) -> [WorkflowRun] {
        struct Page: Decodable {
            var workflowRuns: [WorkflowRun]
            enum CodingKeys: String, CodingKey { case workflowRuns = "workflow_runs" }
        }
        return try await everyPage(
            .listRuns,
            path: "/repos/\(segment(owner))/\(segment(repo))/actions/runs?status=\(status)&per_page=100"
        ) { (response) throws(GitHubAPIError) in
            try decode(Page.self, from: response, endpoint: .listRuns).workflowRuns
        }
    }

    package func jobs(owner: String, repo: String, runID: Int64) async throws(GitHubAPIError) -> [GitHubJob] {
        struct Page: Decodable { var jobs: [GitHubJob] }
        return try await everyPage(
            .listRunJobs,
            path: "/repos/\(segment(owner))/\(segment(repo))/actions/runs/\(runID)/jobs?filter=latest&per_page=100"
        ) { (response) throws(GitHubAPIError) in
            try decode(Page.self, from: response, endpoint: .listRunJobs).jobs
        }
    }

    package func runners(owner: String, repo: String) async throws(GitHubAPIError) -> [RegisteredRunner] {
        struct Page: Decodable { var runners: [RegisteredRunner] }
        return try await everyPage(
            .listRunners,
            path: "/repos/\(segment(owner))/\(segment(repo))/actions/runners?per_page=100"
        ) { (response) throws(GitHubAPIError) in
            try decode(Page.self, from: response, endpoint: .listRunners).runners
        }
    }

    package func runner(owner: String, repo: String, id: Int64) async throws(GitHubAPIError) -> RegisteredRunner? {
        do {
            // Never from the ETag cache: this is the fresh look before a deletion.
            let response = try await call(
                .getRunner,
                path: "/repos/\(segment(owner))/\(segment(repo))/actions/runners/\(id)",
                conditional: false
            )
            return try decode(RegisteredRunner.self, from: response, endpoint: .getRunner)
        } catch  where error.kind == .notFound {
            return nil
        }
    }

    package func deleteRunner(owner: String, repo: String, runnerID: Int64) async throws(GitHubAPIError) {
        _ = try await call(.deleteRunner, path: "/repos/\(segment(owner))/\(segment(repo))/actions/runners/\(runnerID)")
    }

    // MARK: - Calls

    /// Every page of a list: follows `Link: <…>; rel="next"` while it points under `baseURL` (the token is sent to
    /// no other address), up to `GitHubListing.limit` items. Each page is a conditional request of its own.
    private func everyPage<Item>(
        _ endpoint: Endpoint,
        path: String,
        items: (HTTPClientResponse) throws(GitHubAPIError) -> [Item]
    ) async throws(GitHubAPIError) -> [Item] {
        var all: [Item] = []
        var next: String? = path
        while let current = next, all.count < GitHubListing.limit {
            let response = try await call(endpoint, path: current)
            all += try items(response)
            next = Self.nextPage(response.header("link"), under: configuration.baseURL)
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

    private func call(
        _ endpoint: Endpoint,
        path: String,
        body: [UInt8]? = nil,
        conditional: Bool = true
    ) async throws(GitHubAPIError)
        -> HTTPClientResponse
    {
        let until = limitedUntil.withLock { $0 }
        if clock.epochSeconds < until {
            throw GitHubAPIError(
                endpoint: endpoint.rawValue,
                kind: .rateLimited,
                status: nil,
                requestID: nil,
                message: "not called: still rate limited",
                retryAt: Int64(until.rounded(.up)),
                acceptedPermissions: nil
            )
        }
        let method = String(endpoint.rawValue.prefix { $0 != " " })
        var headers: [(name: String, value: String)] = [
            ("Authorization", "Bearer \(configuration.token.value)"),
            ("Accept", "application/vnd.github+json"),
            ("X-GitHub-Api-Version", "2022-11-28"),
            ("User-Agent", "kube-actions-runner/\(KubeActionsRunnerVersion.current)"),
        ]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        let url = configuration.baseURL + path
        let cached = method == "GET" && conditional ? etags.withLock { $0[url] } : nil
        if let cached { headers.append(("If-None-Match", cached.etag)) }
        let request = HTTPClientRequest(
            method: method,
            url: url,
            headers: headers,
            body: body,
            timeout: configuration.timeout
        )

        let response: HTTPClientResponse
        do {
            response = try await transport.send(request)
        } catch {
            metrics?.countGitHubRequest(endpoint: endpoint.rawValue, status: "transport")
            throw GitHubAPIError(
                endpoint: endpoint.rawValue,
                kind: .transport,
                status: nil,
                requestID: nil,
                message: error.message,
                retryAt: nil,
                acceptedPermissions: nil
            )
        }
        metrics?.countGitHubRequest(endpoint: endpoint.rawValue, status: String(response.status))
        if let remaining = response.header("x-ratelimit-remaining").flatMap({ Int64($0) }) {
            metrics?.githubRateLimitRemaining.set(remaining)
            self.remaining.withLock { $0 = remaining }
            // The last request of the window succeeded: every further one would be refused until the reset.
            if remaining == 0, (200..<300).contains(response.status) || response.status == 304,
                let reset = response.header("x-ratelimit-reset").flatMap({ Int64($0) })
            {
                limitedUntil.withLock { $0 = max($0, Double(reset) + 1) }
            }
        }
        if response.status == 304, let cached {
            return HTTPClientResponse(status: 200, headers: response.headers, body: cached.body)
        }
        if (200..<300).contains(response.status) {
            if method == "GET", let etag = response.header("etag") {
                etags.withLock { cache in
                    if cache.count >= 4096 { cache.removeAll() }  // bounded; refilled by the next cycle
                    cache[url] = (etag, response.body)
                }
            }
            return response
        }
        // A window GitHub gives counts from its answer, not from when the request left.
        throw error(for: response, endpoint: endpoint, now: clock.epochSeconds)
    }

    private func error(for response: HTTPClientResponse, endpoint: Endpoint, now: Double) -> GitHubAPIError {
        struct Body: Decodable { var message: String? }
        let message =
            (try? JSONDecoder().decode(Body.self, from: Data(response.body)))?.message
            ?? "HTTP \(response.status)"
        let kind: GitHubAPIError.Kind
        var retryAt: Int64?
        let remaining = response.header("x-ratelimit-remaining")
        let retryAfter = response.header("retry-after").flatMap { Int64($0) }.map { max($0, 0) }
        let mentionsRateLimit = message.lowercased().contains("rate limit")
        let isRateLimit =
            response.status == 429
            || (response.status == 403 && (remaining == "0" || retryAfter != nil || mentionsRateLimit))
        switch response.status {
        case _ where isRateLimit:
            kind = .rateLimited
            // Until the end of the window: `retry-after` seconds from this answer; the reset is a whole second of
            // GitHub's clock, so the whole of that second too.
            let until: Double
            if let retryAfter {
                until = now + Double(retryAfter)
            } else if remaining == "0", let reset = response.header("x-ratelimit-reset").flatMap({ Int64($0) }) {
                until = max(Double(reset) + 1, now)
            } else {
                until = now + 60  // GitHub: otherwise wait at least a minute
            }
            retryAt = Int64(until.rounded(.up))
            limitedUntil.withLock { $0 = max($0, until) }
            logger.warning(
                "GitHub rate limit reached",
                metadata: [
                    "endpoint": "\(endpoint.rawValue)", "resets_at": "\(Timestamps.seconds(retryAt!))",
                    "message": "\(message)",
                ]
            )
        case 401: kind = .unauthorized
        case 403: kind = .forbidden
        case 404: kind = .notFound
        case 409: kind = .conflict
        case 422: kind = .validation
        case 500...599: kind = .server
        default: kind = .unexpectedResponse
        }
        return GitHubAPIError(
            endpoint: endpoint.rawValue,
            kind: kind,
            status: response.status,
            requestID: response.header("x-github-request-id"),
            message: message,
            retryAt: retryAt,
            acceptedPermissions: response.header("x-accepted-github-permissions")
        )
    }

    private func decode<T: Decodable>(
        _ type: T.Type,
        from response: HTTPClientResponse,
        endpoint: Endpoint
    )
        throws(GitHubAPIError) -> T
    {
        do {
            return try JSONDecoder().decode(type, from: Data(response.body))
        } catch {
            throw GitHubAPIError(
                endpoint: endpoint.rawValue,
                kind: .unexpectedResponse,
                status: response.status,
                requestID: response.header("x-github-request-id"),
                message: "response body is not the documented JSON",
                retryAt: nil,
                acceptedPermissions: nil
            )
        }
    }

    /// One path segment, percent-encoded (owner and repository names are nearly always safe already).
    private func segment(_ text: String) -> String {
        percentEncode(text)
    }
}
