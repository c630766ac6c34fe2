import HTTPClient
import Logging
import Observability
import Support

/// A GitHub App (`GITHUB_APP_ID`, `GITHUB_APP_PRIVATE_KEY`): one App installed on several accounts serves them all.
///
/// A call on an owner's resources uses that owner's installation access token. The installation comes from a
/// verified delivery (`remember(installationID:for:)`) or is looked up with the App's JWT
/// (`GET /repos/{owner}/{repo}/installation`, else `GET /orgs/{org}/installation`, then
/// `GET /users/{username}/installation`). Its token (`POST /app/installations/{id}/access_tokens`, valid one hour)
/// is cached until `refreshBeforeExpiry` before its `expires_at`, and fetched once however many calls wait for it.
/// A 401 on a cached token drops it (`rejected(_:)`), and the client retries once with a fresh one.
///
/// Each installation has its own rate-limit window (`installation:<id>`), labelled with its account's login.
package final class GitHubAppCredentials: GitHubCredentials {
    package struct Configuration: Sendable {
        /// The App's id (`iss` of its JWT), or its client id.
        package var appID: String
        /// The App's private key, PEM (PKCS#1 or PKCS#8).
        package var privateKey: Secret
        /// The same API as the client's: `https://api.github.com`, or `https://HOST/api/v3`.
        package var baseURL: String
        /// Per-call timeout of the App's own calls (look-ups, token exchange).
        package var timeout: Duration
        /// A cached installation token is replaced this long before GitHub's `expires_at`.
        package var refreshBeforeExpiry: Duration

        package init(
            appID: String,
            privateKey: Secret,
            baseURL: String = "https://api.github.com",
            timeout: Duration = .seconds(4),
            refreshBeforeExpiry: Duration = .seconds(300)
        ) {
            self.appID = appID
            self.privateKey = privateKey
            self.baseURL = baseURL
            self.timeout = timeout
            self.refreshBeforeExpiry = refreshBeforeExpiry
        }
    }

    /// An installation of the App: its id and the account (user or organization) it is installed on.
    struct Installation: Sendable, Equatable {
        var id: Int64
        var account: String
    }

    /// An installation access token and when GitHub expires it (epoch seconds).
    struct InstallationToken: Sendable {
        var token: Secret
        var expiresAt: Double
    }

    enum Endpoint {
        static let app = "GET /app"
        static let installations = "GET /app/installations"
        static let accessToken = "POST /app/installations/{installation_id}/access_tokens"
        static let repositoryInstallation = "GET /repos/{owner}/{repo}/installation"
        static let organizationInstallation = "GET /orgs/{org}/installation"
        static let userInstallation = "GET /users/{username}/installation"
    }

    let appID: String
    private let key: GitHubAppKey
    let requester: GitHubRequester
    private let clock: @Sendable () -> Double
    private let refreshMargin: Double
    private let logger: Logger
    /// By lowercased owner.
    let installations = SingleFlightCache<String, Installation>()
    let tokens = SingleFlightCache<Int64, InstallationToken>()

    /// - Parameters:
    ///   - transport: the transport the client uses (the same TLS settings: `GITHUB_CA_FILE`).
    ///   - metrics: the App's calls are counted in `github_api_requests_total` like every other.
    ///   - clock: epoch seconds, for the JWT's claims and the tokens' expiry; the client's steady clock by default.
    /// - Throws: when the private key is not an RSA private key in PEM; the message names the setting.
    package init(
        configuration: Configuration,
        transport: any HTTPTransport,
        metrics: Metrics?,
        logger: Logger,
        clock: (@Sendable () -> Double)? = nil
    ) throws(GitHubCredentialsError) {
        let appID = configuration.appID.trimmingOWS()
        guard !appID.isEmpty else { throw GitHubCredentialsError("GITHUB_APP_ID is empty") }
        self.appID = appID
        key = try GitHubAppKey(pem: configuration.privateKey)
        requester = GitHubRequester(
            baseURL: configuration.baseURL,
            transport: transport,
            timeout: configuration.timeout,
            metrics: metrics
        )
        self.clock = clock ?? GitHubClient.steadyEpochSeconds
        refreshMargin = Double(configuration.refreshBeforeExpiry.components.seconds)
        self.logger = logger
    }

    /// Throws what `init` throws for a private key that is not an RSA private key in PEM, without building the
    /// credentials (`check-config`, which calls nothing).
    package static func checkPrivateKey(_ privateKey: Secret) throws(GitHubCredentialsError) {
        _ = try GitHubAppKey(pem: privateKey)
    }

    // MARK: - GitHubCredentials

    package func credential(owner: String, repository: String?) async throws(GitHubAPIError) -> GitHubCredential {
        let installation = try await installation(of: owner, repository: repository)
        let token = try await token(for: installation)
        return GitHubCredential(
            authorization: Secret("Bearer \(token.token.value)"),
            rateLimitKey: "installation:\(installation.id)",
            rateLimitOwner: installation.account,
            installationID: installation.id
        )
    }

    package func rejected(_ credential: GitHubCredential) async -> Bool {
        guard let id = credential.installationID else { return false }
        tokens.remove(id) { "Bearer \($0.token.value)" == credential.authorization.value }
        // Dropped now, or replaced by a newer token meanwhile: either way the next credential is another one.
        return true
    }

    /// Kept unless the owner's installation is known already: a delivery names the installation it came through,
    /// but a known installation is replaced only once GitHub says it is gone (404 on its token).
    package func remember(installationID: Int64, for owner: String) {
        installations.setIfAbsent(Installation(id: installationID, account: owner), for: owner.asciiLowercased)
    }

    // MARK: - The App's own calls

    /// A fresh JWT; it authenticates as the App itself, for the calls below only.
    func jwt() throws(GitHubAPIError) -> Secret {
        do {
            return Secret("Bearer \(try key.jwt(issuer: appID, now: clock()).value)")
        } catch {
            throw GitHubAPIError(endpoint: Endpoint.accessToken, kind: .unauthorized, message: error.message)
        }
    }

    /// Sends one call authenticated as the App; a non-2xx answer is an error, a 401 explained.
    func appCall(_ endpoint: String, path: String) async throws(GitHubAPIError) -> HTTPClientResponse {
        let response = try await requester.send(endpoint, path: path, authorization: try jwt())
        guard (200..<300).contains(response.status) else {
            var error = GitHubRequester.error(for: response, endpoint: endpoint, now: clock()).error
            if error.kind == .unauthorized {
                error.message =
                    "GitHub rejected the App's JWT (\(error.message)): check GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY, and that this host's clock is right"
            }
            throw error
        }
        return response
    }

    private func installation(of owner: String, repository: String?) async throws(GitHubAPIError) -> Installation {
        try await installations.value(for: owner.asciiLowercased, isFresh: { _ in true }) { [self] in
            do throws(GitHubAPIError) {
                return .success(try await lookUp(owner: owner, repository: repository))
            } catch {
                return .failure(error)
            }
        }
    }

    /// The installation that serves `owner` (and `repository`, when given), as GitHub says.
    private func lookUp(owner: String, repository: String?) async throws(GitHubAPIError) -> Installation {
        struct Answer: Decodable {
            struct Account: Decodable { var login: String? }
            var id: Int64
            var account: Account?
        }
        let segment = percentEncode(owner)
        var attempts: [(endpoint: String, path: String)] = []
        if let repository {
            attempts.append(
                (Endpoint.repositoryInstallation, "/repos/\(segment)/\(percentEncode(repository))/installation")
            )
        } else {
            attempts.append((Endpoint.organizationInstallation, "/orgs/\(segment)/installation"))
            attempts.append((Endpoint.userInstallation, "/users/\(segment)/installation"))
        }
        for attempt in attempts {
            do {
                let response = try await appCall(attempt.endpoint, path: attempt.path)
                let answer = try GitHubRequester.decode(Answer.self, from: response, endpoint: attempt.endpoint)
                let installation = Installation(id: answer.id, account: answer.account?.login ?? owner)
                logger.info(
                    "GitHub App installation found",
                    metadata: ["owner": "\(owner)", "installation.id": "\(installation.id)"]
                )
                return installation
            } catch  where error.kind == .notFound {
                continue
            }
        }
        let target = repository.map { "\(owner)/\($0)" } ?? owner
        throw GitHubAPIError(
            endpoint: attempts.last!.endpoint,
            kind: .notFound,
            status: 404,
            message:
                "the GitHub App is not installed on \(target): install it there (with access to the repository), or leave \(owner) out of the allowed owners"
        )
    }

    private func token(for installation: Installation) async throws(GitHubAPIError) -> InstallationToken {
        let clock = self.clock
        let margin = refreshMargin
        return try await tokens.value(for: installation.id, isFresh: { clock() < $0.expiresAt - margin }) {
            [self] in
            do throws(GitHubAPIError) {
                return .success(try await exchange(installation))
            } catch {
                return .failure(error)
            }
        }
    }

    /// `POST /app/installations/{id}/access_tokens`: a token with every permission the installation has.
    private func exchange(_ installation: Installation) async throws(GitHubAPIError) -> InstallationToken {
        struct Answer: Decodable {
            var token: String
            var expiresAt: String

            enum CodingKeys: String, CodingKey {
                case token
                case expiresAt = "expires_at"
            }
        }
        let response: HTTPClientResponse
        do {
            response = try await appCall(
                Endpoint.accessToken,
                path: "/app/installations/\(installation.id)/access_tokens"
            )
        } catch  where error.kind == .notFound {
            // Uninstalled, or reinstalled under another id: look the owner up again next time.
            installations.removeAll { $0.id == installation.id }
            var gone = error
            gone.message =
                "installation \(installation.id) of the GitHub App (\(installation.account)) does not exist any more; it is looked up again on the next call"
            throw gone
        }
        let answer = try GitHubRequester.decode(Answer.self, from: response, endpoint: Endpoint.accessToken)
        guard let expiresAt = Timestamps.parse(answer.expiresAt) else {
            throw GitHubAPIError(
                endpoint: Endpoint.accessToken,
                kind: .unexpectedResponse,
                status: response.status,
                message: "expires_at is not an RFC 3339 time"
            )
        }
        logger.info(
            "GitHub App installation token issued",
            metadata: [
                "installation.id": "\(installation.id)", "owner": "\(installation.account)",
                "expires_at": "\(answer.expiresAt)",
            ]
        )
        return InstallationToken(token: Secret(answer.token), expiresAt: expiresAt)
    }
}
