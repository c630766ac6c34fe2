import GitHub
import Support
import Synchronization

/// The runner group new runners join: one id for every owner (`RUNNER_GROUP_ID`, 1 by default: the default group),
/// or an organization's group by name (`RUNNER_GROUP`), resolved through `GET /orgs/{org}/actions/runner-groups` the
/// first time an organization needs it and kept (a group's id does not change; the name may map to a different id
/// in each organization).
///
/// Repository runners belong to no group of their own: a name is for organization runners (`RUNNER_SCOPE=org`).
package final class RunnerGroups: Sendable {
    package enum Choice: Sendable, Equatable {
        case id(Int)
        case named(String)
    }

    package let choice: Choice
    private let github: any GitHubAPI
    /// Resolved ids by lowercased organization.
    private let resolved = Mutex<[String: Int]>([:])

    package init(_ choice: Choice, github: any GitHubAPI) {
        self.choice = choice
        self.github = github
    }

    /// The group id for runners of `organization`. A failed resolution is not kept: the next job tries again.
    package func id(for organization: String) async throws(GitHubAPIError) -> Int {
        switch choice {
        case .id(let id):
            return id
        case .named(let name):
            let key = organization.asciiLowercased
            if let id = resolved.withLock({ $0[key] }) { return id }
            let id = try await github.runnerGroupID(named: name, organization: organization)
            resolved.withLock { $0[key] = id }
            return id
        }
    }
}
