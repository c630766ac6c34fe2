/// Which repositories' jobs this deployment runs (`ALLOWED_OWNERS`, `ALLOWED_REPOSITORIES`): a correctly signed
/// delivery for any other is answered 403 `not_allowed`, so a leaked webhook secret cannot make the cluster run
/// strangers' jobs.
///
/// A repository is allowed when its owner matches an owner pattern, or `owner/repo` matches a repository pattern.
/// Patterns are globs: `*` any run of characters, `?` one character, applied to the owner and to the repository
/// name apart (so neither crosses the `/`); everything compares ignoring ASCII case, as GitHub logins and repository
/// names do. Both lists empty: every repository.
package struct RepositoryAllowList: Sendable, Equatable {
    private let owners: [Glob]
    /// Owner and name patterns of each `owner/repo` pattern.
    private let repositories: [(owner: Glob, name: Glob)]
    /// Owners named without a wildcard (in either list): accounts that must be served, which the start-up check of
    /// the credentials looks at.
    package private(set) var literalOwners: [String] = []

    /// Everyone: the behaviour without an allow-list.
    package static let everyone = RepositoryAllowList(validOwners: [], repositories: [])

    /// - Throws: a pattern that is empty, an owner pattern with a `/`, or a repository pattern without exactly one.
    package init(owners: [String], repositories: [String]) throws(RepositoryAllowListError) {
        var ownerGlobs: [Glob] = []
        for pattern in owners {
            guard !pattern.isEmpty, !pattern.contains("/") else {
                throw RepositoryAllowListError(
                    setting: "ALLOWED_OWNERS",
                    pattern: pattern,
                    expected: "an owner (login) pattern without /"
                )
            }
            ownerGlobs.append(Glob(pattern))
        }
        var repositoryGlobs: [(owner: Glob, name: Glob)] = []
        for pattern in repositories {
            let parts = pattern.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw RepositoryAllowListError(
                    setting: "ALLOWED_REPOSITORIES",
                    pattern: pattern,
                    expected: "an owner/repository pattern"
                )
            }
            repositoryGlobs.append((Glob(String(parts[0])), Glob(String(parts[1]))))
        }
        self.init(validOwners: ownerGlobs, repositories: repositoryGlobs)
        var literals: [String] = []
        for owner in owners + repositories.map({ String($0.prefix { $0 != "/" }) })
        where !owner.contains("*") && !owner.contains("?") {
            if !literals.contains(where: { $0.lowercased() == owner.lowercased() }) { literals.append(owner) }
        }
        literalOwners = literals
    }

    private init(validOwners: [Glob], repositories: [(owner: Glob, name: Glob)]) {
        self.owners = validOwners
        self.repositories = repositories
    }

    /// Whether every repository is allowed (no list configured).
    package var allowsEveryone: Bool { owners.isEmpty && repositories.isEmpty }

    package func allows(owner: String, repository: String) -> Bool {
        if allowsEveryone { return true }
        if owners.contains(where: { $0.matches(owner) }) { return true }
        return repositories.contains { $0.owner.matches(owner) && $0.name.matches(repository) }
    }

    package static func == (lhs: RepositoryAllowList, rhs: RepositoryAllowList) -> Bool {
        lhs.owners == rhs.owners && lhs.repositories.elementsEqual(rhs.repositories) { $0 == $1 }
    }
}

/// An allow-list pattern that cannot be used; names its setting.
package struct RepositoryAllowListError: Error, Equatable, CustomStringConvertible {
    package var setting: String
    package var pattern: String
    package var expected: String

    package var description: String { "\(setting): \"\(pattern)\" is not \(expected)" }
}

/// A glob over one name (a login or a repository name, which are ASCII): `*` any run of characters, `?` one; ASCII
/// case ignored.
struct Glob: Sendable, Equatable {
    private let pattern: [UInt8]

    init(_ pattern: String) {
        self.pattern = Array(pattern.utf8).map(Glob.folded)
    }

    func matches(_ text: String) -> Bool {
        let text = Array(text.utf8).map(Glob.folded)
        // Wildcard matching with one backtrack point (the last `*`): no recursion, quadratic at worst.
        var p = 0
        var t = 0
        var star: Int?
        var resume = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == UInt8(ascii: "*") {
                star = p
                resume = t
                p += 1
            } else if p < pattern.count, pattern[p] == text[t] || pattern[p] == UInt8(ascii: "?") {
                p += 1
                t += 1
            } else if let star {
                p = star + 1
                resume += 1
                t = resume
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }

    private static func folded(_ byte: UInt8) -> UInt8 {
        byte >= 65 && byte <= 90 ? byte | 0x20 : byte
    }
}
