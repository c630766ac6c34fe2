import Support

/// A failed GitHub call, with what an operator needs to act on it.
package struct GitHubAPIError: Error, CustomStringConvertible, Sendable {
    package enum Kind: Sendable, Equatable {
        /// 403/429 with a rate-limit signal; `retryAt` says when to try again.
        case rateLimited
        /// 401: the token is invalid or expired.
        case unauthorized
        /// 403 without a rate-limit signal: the token lacks a permission.
        case forbidden
        /// 404: no such job or repository, or (for private ones) no access to it.
        case notFound
        /// 409: a runner with that name exists.
        case conflict
        /// 422: validation failed (runner group, labels), or a busy runner for DELETE.
        case validation
        /// 5xx.
        case server
        /// No response: timeout, connection or TLS failure.
        case transport
        /// A 2xx body that is not what the API documents.
        case unexpectedResponse
    }

    /// Route template, never a URL: "POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig".
    package var endpoint: String
    package var kind: Kind
    /// Nil when there was no response.
    package var status: Int?
    /// `X-GitHub-Request-Id`, for GitHub support.
    package var requestID: String?
    /// GitHub's `message`, or the transport's error.
    package var message: String
    /// For rate limits: seconds since the epoch after which calls may resume.
    package var retryAt: Int64?
    /// `X-Accepted-GitHub-Permissions`: what the token would need.
    package var acceptedPermissions: String?

    package init(
        endpoint: String,
        kind: Kind,
        status: Int? = nil,
        requestID: String? = nil,
        message: String,
        retryAt: Int64? = nil,
        acceptedPermissions: String? = nil
    ) {
        self.endpoint = endpoint
        self.kind = kind
        self.status = status
        self.requestID = requestID
        self.message = message
        self.retryAt = retryAt
        self.acceptedPermissions = acceptedPermissions
    }

    /// The `status` label of `github_api_requests_total`.
    package var metricLabel: String { status.map { String($0) } ?? "transport" }

    /// Transient failures a fast retry may fix.
    package var isTransient: Bool { kind == .server || kind == .transport }

    package var description: String {
        var text = "GitHub \(endpoint) failed (\(status.map { String($0) } ?? "no response")): \(message)"
        if let acceptedPermissions { text += "; the token needs \(acceptedPermissions)" }
        if let retryAt { text += "; rate limited until \(Timestamps.seconds(retryAt))" }
        if let requestID { text += " [request \(requestID)]" }
        return text
    }
}
