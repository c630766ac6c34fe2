import HTTPClient
import Support

/// What the start-up check of the credentials looks at, and how it calls GitHub (`GitHubClient.checkCredentials`).
///
/// Each credential is checked with read-only calls only: a write permission is read from what GitHub reports (a
/// classic token's `X-OAuth-Scopes`, an App installation's `permissions`), never tried.
package struct GitHubCredentialCheck: Sendable {
    /// A repository to probe.
    package struct Repository: Sendable, Equatable {
        package var owner: String
        package var name: String

        package init(owner: String, name: String) {
            self.owner = owner
            self.name = name
        }
    }

    /// At most this many repositories or organizations are probed per credential.
    static let probeLimit = 5

    package var scope: RunnerScope
    /// Repositories the service is known to serve (the reconciler's list): probed for access.
    package var repositories: [Repository]
    /// Accounts that must be served (allowed owners without wildcards): an App must be installed on each.
    package var owners: [String]
    /// Whether failed deliveries are to be redelivered (`REDELIVER_FAILED_DELIVERIES`): a token is then checked for
    /// reading webhook deliveries too.
    package var deliveries = false
    let requester: GitHubRequester
    let clock: @Sendable () -> Double

    /// What a token needs for `scope`, as a sentence's object.
    var neededTokenPermission: String {
        switch scope {
        case .repository: "\"Administration: write\" on the repositories (classic token: the repo scope)"
        case .organization:
            "\"Self-hosted runners: write\" on the organization (classic token: the admin:org scope, and repo for private repositories)"
        }
    }
}

/// One thing the credentials will not let the service do, and why; the composition root logs each and reports
/// them in `/ready`'s detail.
package struct GitHubCredentialFinding: Sendable, Equatable, CustomStringConvertible {
    package enum Severity: String, Sendable {
        /// Provisioning will fail for what `subject` serves.
        case error
        /// Something may fail, or could not be checked.
        case warning
    }

    package var severity: Severity
    /// Which credential, never its value: "GITHUB_TOKEN", "GITHUB_TOKENS owner octo", "GitHub App 123",
    /// "GitHub App installation 42 (octo-org)".
    package var subject: String
    /// What will not work and what to do.
    package var message: String

    package init(_ severity: Severity, subject: String, _ message: String) {
        self.severity = severity
        self.subject = subject
        self.message = message
    }

    package var description: String { "\(subject): \(message)" }
}

// MARK: - Tokens

extension GitHubTokens {
    /// Each token: `GET /user` (401: wrong or revoked; a classic token's `X-OAuth-Scopes` must hold the scope the
    /// runner scope needs), then a read of the runners of a few of its repositories or organizations (403/404: no
    /// access, with the permissions GitHub says are needed).
    package func check(_ context: GitHubCredentialCheck) async -> [GitHubCredentialFinding] {
        var findings: [GitHubCredentialFinding] = []
        let mine = Set(owners.map(\.asciiLowercased))
        for (owner, token) in checkedTokens {
            let subject = owner.map { "GITHUB_TOKENS owner \($0)" } ?? "GITHUB_TOKEN"
            let served: (String) -> Bool = { candidate in
                let candidate = candidate.asciiLowercased
                if let owner { return candidate == owner.asciiLowercased }
                return !mine.contains(candidate)
            }
            findings += await Self.check(token: token, subject: subject, serving: served, context)
        }
        return findings
    }

    /// The default token (owner nil) and each owner's.
    private var checkedTokens: [(owner: String?, token: Secret)] {
        (defaultToken.map { [(nil, $0)] } ?? []) + ownerTokens.map { ($0.owner, $0.token) }
    }

    private static func check(
        token: Secret,
        subject: String,
        serving served: (String) -> Bool,
        _ context: GitHubCredentialCheck
    ) async -> [GitHubCredentialFinding] {
        let authorization = Secret("Bearer \(token.value)")
        if token.value.hasPrefix("ghs_") {
            return [
                GitHubCredentialFinding(
                    .error,
                    subject: subject,
                    "is a GitHub App installation token, which expires within an hour; configure the App itself (GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY) instead"
                )
            ]
        }
        var findings: [GitHubCredentialFinding] = []
        var scopes: String?
        do {
            let response = try await context.requester.send("GET /user", path: "/user", authorization: authorization)
            switch response.status {
            case 200..<300:
                scopes = response.header("x-oauth-scopes")
                if let scopes {
                    findings += missingScopes(scopes, subject: subject, context)
                }
            case 401:
                let refusal = GitHubRequester.error(for: response, endpoint: "GET /user", now: context.clock()).error
                return [
                    GitHubCredentialFinding(
                        .error,
                        subject: subject,
                        "GitHub rejects it (401 \(refusal.message)): the token is wrong, expired or revoked"
                    )
                ]
            default:
                break  // 403 and the like: not a user's token; the probes below tell what it can do
            }
        } catch {
            return [GitHubCredentialFinding(.warning, subject: subject, "not checked: \(error)")]
        }
        findings += await probe(authorization, subject: subject, serving: served, context)
        if context.deliveries {
            findings += await checkDeliveries(authorization, scopes: scopes, subject: subject, serving: served, context)
        }
        return findings
    }

    /// Whether the token may read the deliveries of the webhooks deliveries come through: a classic token's
    /// scopes (`write:repo_hook` or `admin:repo_hook` for a repository's hooks, `admin:org_hook` for an
    /// organization's), else the hooks of one repository (or organization) it serves, read. Without it, failed
    /// deliveries are not redelivered and only the reconciler's polling recovers their jobs: a warning.
    private static func checkDeliveries(
        _ authorization: Secret,
        scopes: String?,
        subject: String,
        serving served: (String) -> Bool,
        _ context: GitHubCredentialCheck
    ) async -> [GitHubCredentialFinding] {
        let consequence =
            "failed deliveries are not redelivered and lost jobs are found by polling only (slower with many repositories)"
        if let scopes {
            let granted = Set(scopes.split(separator: ",").map { $0.trimmingOWS() })
            let hookScopes: Set<String> = ["admin:repo_hook", "write:repo_hook", "read:repo_hook", "admin:org_hook"]
            guard granted.isDisjoint(with: hookScopes) else { return [] }
            return [
                GitHubCredentialFinding(
                    .warning,
                    subject: subject,
                    "cannot read webhook deliveries (needs the write:repo_hook scope for repository hooks, admin:org_hook for organization hooks): \(consequence)"
                )
            ]
        }
        let target: (endpoint: String, path: String, name: String)?
        switch context.scope {
        case .repository:
            target = context.repositories.first { served($0.owner) }.map { repository in
                (
                    "GET /repos/{owner}/{repo}/hooks",
                    "/repos/\(percentEncode(repository.owner))/\(percentEncode(repository.name))/hooks?per_page=1",
                    "\(repository.owner)/\(repository.name)"
                )
            }
        case .organization:
            target = (context.repositories.map(\.owner) + context.owners).first(where: served).map { organization in
                ("GET /orgs/{org}/hooks", "/orgs/\(percentEncode(organization))/hooks?per_page=1", organization)
            }
        }
        guard let target,
            let response = try? await context.requester.send(
                target.endpoint,
                path: target.path,
                authorization: authorization
            ),
            response.status == 403 || response.status == 404
        else { return [] }
        let error = GitHubRequester.error(for: response, endpoint: target.endpoint, now: context.clock()).error
        let needed =
            error.acceptedPermissions.map { "\($0) (GitHub says)" } ?? "the Webhooks permission, read and write"
        return [
            GitHubCredentialFinding(
                .warning,
                subject: subject,
                "cannot read the webhooks of \(target.name) (\(response.status) \(error.message)); it needs \(needed): \(consequence)"
            )
        ]
    }

    /// A classic token's scopes against what the runner scope needs (`X-OAuth-Scopes: repo, admin:org`).
    private static func missingScopes(
        _ header: String,
        subject: String,
        _ context: GitHubCredentialCheck
    ) -> [GitHubCredentialFinding] {
        let scopes = Set(header.split(separator: ",").map { $0.trimmingOWS() })
        var findings: [GitHubCredentialFinding] = []
        switch context.scope {
        case .repository:
            if !scopes.contains("repo") {
                findings.append(
                    GitHubCredentialFinding(
                        scopes.contains("public_repo") ? .warning : .error,
                        subject: subject,
                        scopes.contains("public_repo")
                            ? "has the public_repo scope only: runners can be registered for public repositories only; add the repo scope"
                            : "lacks the repo scope (has: \(header.isEmpty ? "none" : header)): repository runners cannot be registered"
                    )
                )
            }
        case .organization:
            if !scopes.contains("admin:org") {
                findings.append(
                    GitHubCredentialFinding(
                        .error,
                        subject: subject,
                        "lacks the admin:org scope (has: \(header.isEmpty ? "none" : header)): organization runners cannot be registered"
                    )
                )
            }
            if !scopes.contains("repo") {
                findings.append(
                    GitHubCredentialFinding(
                        .warning,
                        subject: subject,
                        "lacks the repo scope: jobs of private repositories cannot be read"
                    )
                )
            }
        }
        return findings
    }

    /// Reads the runners of a few repositories (or organizations) the token serves.
    private static func probe(
        _ authorization: Secret,
        subject: String,
        serving served: (String) -> Bool,
        _ context: GitHubCredentialCheck
    ) async -> [GitHubCredentialFinding] {
        var targets: [(endpoint: String, path: String, name: String)] = []
        switch context.scope {
        case .repository:
            for repository in context.repositories where served(repository.owner) {
                targets.append(
                    (
                        "GET /repos/{owner}/{repo}/actions/runners",
                        "/repos/\(percentEncode(repository.owner))/\(percentEncode(repository.name))/actions/runners?per_page=1",
                        "\(repository.owner)/\(repository.name)"
                    )
                )
            }
        case .organization:
            var seen: Set<String> = []
            let organizations = context.repositories.map(\.owner) + context.owners
            for organization in organizations where served(organization) {
                guard seen.insert(organization.asciiLowercased).inserted else { continue }
                targets.append(
                    (
                        "GET /orgs/{org}/actions/runners",
                        "/orgs/\(percentEncode(organization))/actions/runners?per_page=1",
                        organization
                    )
                )
            }
        }
        var findings: [GitHubCredentialFinding] = []
        for target in targets.prefix(GitHubCredentialCheck.probeLimit) {
            let response: HTTPClientResponse
            do {
                response = try await context.requester.send(
                    target.endpoint,
                    path: target.path,
                    authorization: authorization
                )
            } catch {
                findings.append(
                    GitHubCredentialFinding(.warning, subject: subject, "\(target.name) not checked: \(error)")
                )
                continue
            }
            guard !(200..<300).contains(response.status) else { continue }
            let error = GitHubRequester.error(for: response, endpoint: target.endpoint, now: context.clock()).error
            switch error.kind {
            case .forbidden, .notFound, .unauthorized:
                var message = "cannot read the runners of \(target.name) (\(response.status) \(error.message))"
                message +=
                    "; it needs "
                    + (error.acceptedPermissions.map { "\($0) (GitHub says)" } ?? context.neededTokenPermission)
                findings.append(GitHubCredentialFinding(.error, subject: subject, message))
            default:
                findings.append(
                    GitHubCredentialFinding(.warning, subject: subject, "\(target.name) not checked: \(error)")
                )
            }
        }
        return findings
    }
}

// MARK: - GitHub App

extension GitHubAppCredentials {
    /// `GET /app` with the JWT (401: wrong App id or key, or a clock far off), then every installation
    /// (`GET /app/installations`): each must grant what the runner scope needs — repository runners
    /// `administration: write`, organization runners `organization_self_hosted_runners: write` on an organization
    /// account — and `actions: read` for the jobs; every owner in `context.owners` must have one.
    package func check(_ context: GitHubCredentialCheck) async -> [GitHubCredentialFinding] {
        let subject = "GitHub App \(appID)"
        do {
            _ = try await appCall(Endpoint.app, path: "/app")
        } catch {
            let severity: GitHubCredentialFinding.Severity = error.kind == .transport ? .warning : .error
            return [
                GitHubCredentialFinding(
                    severity,
                    subject: subject,
                    error.kind == .transport ? "not checked: \(error)" : error.message
                )
            ]
        }
        struct Installation: Decodable {
            struct Account: Decodable {
                var login: String?
                var type: String?
            }
            var id: Int64
            var account: Account?
            var permissions: [String: String]?
            var suspendedAt: String?

            enum CodingKeys: String, CodingKey {
                case id, account, permissions
                case suspendedAt = "suspended_at"
            }
        }
        var installations: [Installation] = []
        var path: String? = "/app/installations?per_page=100"
        do {
            while let current = path, installations.count < GitHubListing.limit {
                let response = try await appCall(Endpoint.installations, path: current)
                installations += try GitHubRequester.decode(
                    [Installation].self,
                    from: response,
                    endpoint: Endpoint.installations
                )
                path = GitHubClient.nextPage(response.header("link"), under: requester.baseURL)
            }
        } catch {
            return [GitHubCredentialFinding(.warning, subject: subject, "installations not checked: \(error)")]
        }
        guard !installations.isEmpty else {
            return [
                GitHubCredentialFinding(
                    .error,
                    subject: subject,
                    "is installed on no account: install it on the organizations or users whose jobs it should run"
                )
            ]
        }
        var findings: [GitHubCredentialFinding] = []
        for installation in installations {
            let login = installation.account?.login ?? "?"
            let subject = "GitHub App installation \(installation.id) (\(login))"
            let permissions = installation.permissions ?? [:]
            if installation.suspendedAt != nil {
                findings.append(
                    GitHubCredentialFinding(.error, subject: subject, "is suspended: no token can be issued for it")
                )
                continue
            }
            var missing: [String] = []
            switch context.scope {
            case .repository:
                if permissions["administration"] != "write" { missing.append("Administration: write") }
            case .organization:
                if installation.account?.type == "User" {
                    findings.append(
                        GitHubCredentialFinding(
                            .error,
                            subject: subject,
                            "is on a user account, which has no organization runners; use RUNNER_SCOPE=repo for it"
                        )
                    )
                    continue
                }
                if permissions["organization_self_hosted_runners"] != "write" {
                    missing.append("Self-hosted runners (organization): write")
                }
            }
            if permissions["actions"] != "read" && permissions["actions"] != "write" { missing.append("Actions: read") }
            if !missing.isEmpty {
                findings.append(
                    GitHubCredentialFinding(
                        .error,
                        subject: subject,
                        "lacks \(missing.joined(separator: ", ")) (has: \(Self.describe(permissions))); grant it in the App's settings, then have \(login) accept the new permissions"
                    )
                )
            }
        }
        let installed = Set(installations.compactMap { $0.account?.login?.asciiLowercased })
        for owner in context.owners where !installed.contains(owner.asciiLowercased) {
            findings.append(
                GitHubCredentialFinding(
                    .error,
                    subject: subject,
                    "is not installed on \(owner): its jobs cannot get runners"
                )
            )
        }
        return findings
    }

    private static func describe(_ permissions: [String: String]) -> String {
        permissions.isEmpty
            ? "none" : permissions.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
    }
}
