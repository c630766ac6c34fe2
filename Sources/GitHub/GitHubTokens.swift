import Support

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Personal access tokens: one for every owner (`GITHUB_TOKEN`, the single-token setup), and optionally one per
/// owner (`GITHUB_TOKENS`), the default token serving every other owner. Owners compare case-insensitively, as
/// GitHub logins do.
///
/// Each token has its own rate-limit window: `token:<owner>` for an owner's, `token` for the default one.
package struct GitHubTokens: GitHubCredentials {
    /// One configured owner token: the owner as written (the metric label) and the token.
    package struct OwnerToken: Sendable, Equatable {
        package var owner: String
        package var token: Secret

        package init(owner: String, token: Secret) {
            self.owner = owner
            self.token = token
        }
    }

    package let defaultToken: Secret?
    /// Keyed by the lowercased owner.
    private let byOwner: [String: OwnerToken]

    /// - Parameters:
    ///   - defaultToken: `GITHUB_TOKEN`: used for every owner without a token of its own; nil when only the listed
    ///     owners are served.
    ///   - ownerTokens: `GITHUB_TOKENS` as `parse(_:)` reads it. An owner listed twice (in any case) keeps its last
    ///     token; `parse(_:)` refuses such a list.
    package init(defaultToken: Secret?, ownerTokens: [OwnerToken] = []) {
        self.defaultToken = defaultToken
        var byOwner: [String: OwnerToken] = [:]
        for entry in ownerTokens { byOwner[entry.owner.asciiLowercased] = entry }
        self.byOwner = byOwner
    }

    /// One token for everything: today's `GITHUB_TOKEN` setup.
    package init(_ token: Secret) {
        self.init(defaultToken: token)
    }

    /// The owners with a token of their own, as configured, by owner.
    package var ownerTokens: [OwnerToken] { byOwner.values.sorted { $0.owner < $1.owner } }

    /// The owners with a token of their own, as configured.
    package var owners: [String] { ownerTokens.map(\.owner) }

    package func credential(owner: String, repository: String?) async throws(GitHubAPIError) -> GitHubCredential {
        if let entry = byOwner[owner.asciiLowercased] {
            return GitHubCredential(
                authorization: Secret("Bearer \(entry.token.value)"),
                rateLimitKey: "token:\(entry.owner.asciiLowercased)",
                rateLimitOwner: entry.owner
            )
        }
        if let defaultToken {
            return GitHubCredential(
                authorization: Secret("Bearer \(defaultToken.value)"),
                rateLimitKey: "token",
                rateLimitOwner: ""
            )
        }
        throw GitHubAPIError(
            endpoint: "credentials for {owner}",
            kind: .unauthorized,
            message: "no GitHub token for owner \(owner): add it to GITHUB_TOKENS, or set GITHUB_TOKEN for every owner"
        )
    }

    package var knownRateLimitOwners: [String] {
        (defaultToken == nil ? [] : [""]) + owners
    }

    // MARK: - GITHUB_TOKENS

    /// Reads `GITHUB_TOKENS` in the format of the original design (the Go kube-actions-runner's
    /// `internal/tokens/registry.go`): a JSON array of `{"owner": "…", "token": "…"}` objects, for example
    /// `[{"owner":"octo-org","token":"ghp_…"},{"owner":"hubot","token":"github_pat_…"}]`.
    ///
    /// Every entry needs a non-empty owner and token; an owner may appear once (ignoring case). Errors name the
    /// entry by position and never contain a token.
    package static func parse(_ text: String) throws(GitHubCredentialsError) -> [OwnerToken] {
        struct Entry: Decodable {
            var owner: String?
            var token: String?
        }
        let entries: [Entry]
        do {
            entries = try JSONDecoder().decode([Entry].self, from: Data(text.utf8))
        } catch {
            throw GitHubCredentialsError(
                #"GITHUB_TOKENS must be a JSON array of {"owner": "...", "token": "..."} objects"#
            )
        }
        var seen: Set<String> = []
        var tokens: [OwnerToken] = []
        for (index, entry) in entries.enumerated() {
            let owner = (entry.owner ?? "").trimmingWhitespace()
            let token = (entry.token ?? "").trimmingWhitespace()
            guard !owner.isEmpty else {
                throw GitHubCredentialsError("GITHUB_TOKENS entry \(index + 1) has no owner")
            }
            guard !token.isEmpty else {
                throw GitHubCredentialsError("GITHUB_TOKENS entry \(index + 1) (owner \(owner)) has no token")
            }
            guard seen.insert(owner.asciiLowercased).inserted else {
                throw GitHubCredentialsError("GITHUB_TOKENS lists owner \(owner) more than once")
            }
            tokens.append(OwnerToken(owner: owner, token: Secret(token)))
        }
        return tokens
    }
}

extension String {
    /// Without leading and trailing spaces, tabs and line ends.
    fileprivate func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
