import Support

/// How `GitHubClient` authenticates: it asks for the credential of each call by the owner whose resources the call
/// reads or changes (and the repository, when there is one).
///
/// Three implementations: `GitHubTokens` (one token, or a token per owner with a default) and
/// `GitHubAppCredentials` (a GitHub App: installation tokens, exchanged and cached per installation).
package protocol GitHubCredentials: Sendable {
    /// The credential for a call on `owner`'s resources; `repository` helps find an App's installation.
    func credential(owner: String, repository: String?) async throws(GitHubAPIError) -> GitHubCredential

    /// GitHub answered 401 to a call made with `credential`. True when the credential was a cached one that is now
    /// dropped, so that asking again gives a fresh one and one retry is worth it; false for a static token.
    func rejected(_ credential: GitHubCredential) async -> Bool

    /// A signature-verified delivery said that `installationID` serves `owner` (`installation.id` of an App's
    /// deliveries), which spares a lookup. Tokens ignore it.
    func remember(installationID: Int64, for owner: String)

    /// The `owner` labels of `github_api_rate_limit_remaining` known before any call (their series start at -1).
    var knownRateLimitOwners: [String] { get }

    /// Validates the credentials once, through the API, and says what will not work and why.
    func check(_ context: GitHubCredentialCheck) async -> [GitHubCredentialFinding]
}

extension GitHubCredentials {
    package func rejected(_ credential: GitHubCredential) async -> Bool { false }
    package func remember(installationID: Int64, for owner: String) {}
    package var knownRateLimitOwners: [String] { [] }
}

/// What one call is authenticated with, and whose rate limit it counts against.
package struct GitHubCredential: Sendable, Equatable {
    /// The `Authorization` header's value (`Bearer …`).
    package var authorization: Secret
    /// The rate-limit window of the calls made with it: one per token or installation ("token", "token:octo",
    /// "installation:42"), never the secret itself.
    package var rateLimitKey: String
    /// The `owner` label of `github_api_rate_limit_remaining` for that window ("" for the default token).
    package var rateLimitOwner: String
    /// The App installation the token belongs to; nil for personal access tokens.
    package var installationID: Int64?

    package init(authorization: Secret, rateLimitKey: String, rateLimitOwner: String, installationID: Int64? = nil) {
        self.authorization = authorization
        self.rateLimitKey = rateLimitKey
        self.rateLimitOwner = rateLimitOwner
        self.installationID = installationID
    }
}

/// Credentials that cannot be used as given (a key that is not an RSA private key, a malformed `GITHUB_TOKENS`).
/// The message names the setting and never contains a secret.
package struct GitHubCredentialsError: Error, Equatable, CustomStringConvertible {
    package var message: String

    package init(_ message: String) {
        self.message = message
    }

    package var description: String { message }
}
