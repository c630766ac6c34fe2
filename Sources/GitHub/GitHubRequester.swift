import HTTPClient
import Observability
import Support

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One GitHub REST request with GitHub's headers, counted in `github_api_requests_total{endpoint,status}`; no
/// response becomes a `.transport` error. What a status means is the caller's to decide (`error(for:…)`).
struct GitHubRequester: Sendable {
    /// `https://api.github.com`, or `https://HOST/api/v3` for GHES: every path is appended after it.
    let baseURL: String
    let transport: any HTTPTransport
    let timeout: Duration
    let metrics: Metrics?

    init(baseURL: String, transport: any HTTPTransport, timeout: Duration, metrics: Metrics?) {
        self.baseURL = Self.normalized(baseURL)
        self.transport = transport
        self.timeout = timeout
        self.metrics = metrics
    }

    /// The base URL without trailing slashes (`https://HOST/api/v3/` and `https://HOST/api/v3` are one API).
    static func normalized(_ baseURL: String) -> String {
        var url = Substring(baseURL)
        while url.hasSuffix("/") { url = url.dropLast() }
        return String(url)
    }

    /// Sends `method path` (the method is the endpoint template's first word) and returns whatever GitHub answered.
    func send(
        _ endpoint: String,
        path: String,
        authorization: Secret,
        body: [UInt8]? = nil,
        headers extra: [(name: String, value: String)] = []
    ) async throws(GitHubAPIError) -> HTTPClientResponse {
        let method = String(endpoint.prefix { $0 != " " })
        var headers: [(name: String, value: String)] = [
            ("Authorization", authorization.value),
            ("Accept", "application/vnd.github+json"),
            ("X-GitHub-Api-Version", "2022-11-28"),
            ("User-Agent", "kube-actions-runner/\(KubeActionsRunnerVersion.current)"),
        ]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        headers += extra
        let request = HTTPClientRequest(
            method: method,
            url: baseURL + path,
            headers: headers,
            body: body,
            timeout: timeout
        )
        do {
            let response = try await transport.send(request)
            metrics?.countGitHubRequest(endpoint: endpoint, status: String(response.status))
            return response
        } catch {
            metrics?.countGitHubRequest(endpoint: endpoint, status: "transport")
            throw GitHubAPIError(endpoint: endpoint, kind: .transport, message: error.message)
        }
    }

    /// The error a non-2xx answer means, and for a rate limit the epoch second until which calls with the same
    /// credential must wait. A window GitHub gives counts from its answer (`now`), not from when the request left.
    static func error(
        for response: HTTPClientResponse,
        endpoint: String,
        now: Double
    ) -> (error: GitHubAPIError, pauseUntil: Double?) {
        struct Body: Decodable { var message: String? }
        let message =
            (try? JSONDecoder().decode(Body.self, from: Data(response.body)))?.message
            ?? "HTTP \(response.status)"
        let kind: GitHubAPIError.Kind
        var pauseUntil: Double?
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
            if let retryAfter {
                pauseUntil = now + Double(retryAfter)
            } else if remaining == "0", let reset = response.header("x-ratelimit-reset").flatMap({ Int64($0) }) {
                pauseUntil = max(Double(reset) + 1, now)
            } else {
                pauseUntil = now + 60  // GitHub: otherwise wait at least a minute
            }
        case 401: kind = .unauthorized
        case 403: kind = .forbidden
        case 404: kind = .notFound
        case 409: kind = .conflict
        case 422: kind = .validation
        case 500...599: kind = .server
        default: kind = .unexpectedResponse
        }
        let error = GitHubAPIError(
            endpoint: endpoint,
            kind: kind,
            status: response.status,
            requestID: response.header("x-github-request-id"),
            message: message,
            retryAt: pauseUntil.map { Int64($0.rounded(.up)) },
            acceptedPermissions: response.header("x-accepted-github-permissions")
        )
        return (error, pauseUntil)
    }

    /// A 2xx body as the documented JSON, else `.unexpectedResponse`.
    static func decode<T: Decodable>(
        _ type: T.Type,
        from response: HTTPClientResponse,
        endpoint: String
    ) throws(GitHubAPIError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(response.body))
        } catch {
            throw GitHubAPIError(
                endpoint: endpoint,
                kind: .unexpectedResponse,
                status: response.status,
                requestID: response.header("x-github-request-id"),
                message: "response body is not the documented JSON"
            )
        }
    }
}
