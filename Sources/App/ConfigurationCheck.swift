import GitHub
import Runners
import Support

/// `kube-actions-runner check-config`: the configuration in the environment, checked as `serve` checks it before it
/// starts anything, without calling GitHub or Kubernetes.
///
/// Every setting of `Configuration.settings` and the rules between them, then what `serve` reads from files before
/// it starts: the GitHub App's private key and, unless `DRY_RUN`, the cluster connection (service account or
/// `KUBECONFIG`). Every problem is reported at once; secrets never appear, only which kind of GitHub access is used.
package struct ConfigurationCheck: Sendable {
    /// Each problem, naming its setting; empty when `serve` would start with this configuration.
    package var problems: [String]
    /// What the configuration amounts to, one `name: value` line each (only when there are no problems).
    package var summary: [(String, String)]

    package var isValid: Bool { problems.isEmpty }

    /// What the command prints: "configuration OK" and the summary, or every problem.
    package var text: String {
        if isValid {
            return (["configuration OK"] + summary.map { "  \($0.0): \($0.1)" }).joined(separator: "\n")
        }
        return (["invalid configuration:"] + problems).joined(separator: "\n")
    }

    package init(environment: [String: String], files: some FileReading = LocalFiles()) {
        var reader = SettingsReader(environment: environment, files: files)
        var configuration = Configuration.read(with: &reader)
        problems = reader.errors.map(\.description)
        if let key = configuration.githubAppPrivateKey {
            do {
                try GitHubAppCredentials.checkPrivateKey(key)
            } catch {
                problems.append(error.description)
            }
        }
        var kubernetes = "none (DRY_RUN: nothing is sent to GitHub or Kubernetes)"
        if !configuration.dryRun {
            do {
                let (connection, resolved) = try Provisioning.connect(
                    configuration: configuration,
                    environment: environment,
                    files: files
                )
                configuration = resolved
                kubernetes = "\(connection.server) (\(connection.source))"
            } catch {
                problems.append("Kubernetes: \(error.description)")
            }
        }
        summary = [
            ("mode", configuration.runnerMode.rawValue),
            ("namespace", configuration.namespace),
            ("runner scope", Self.scope(of: configuration)),
            ("GitHub access", Self.githubAccess(of: configuration)),
            ("GitHub API", configuration.githubAPIURL),
            ("Kubernetes", kubernetes),
        ]
        if let path = configuration.profilesFile {
            summary.append(("profiles", path))
            for profile in configuration.runnerProfiles.profiles {
                summary.append(("  \(profile.displayName)", Self.describe(profile)))
            }
        } else {
            summary.append(("label matchers", configuration.labelMatcher.description))
        }
    }

    /// A profile in one line: what it takes, registers with, and runs.
    static func describe(_ profile: RunnerProfile) -> String {
        var parts = [
            "match '\(profile.matcher)'",
            "labels " + (profile.runnerLabels.map { "[\($0.joined(separator: ", "))]" } ?? "(the job's)"),
            "mode \(profile.settings.mode)",
            "image \(profile.settings.runnerImage)",
        ]
        if let cap = profile.maxRunners { parts.append("maxRunners \(cap)") }
        if profile.podTemplatePatch != nil { parts.append("podTemplatePatch") }
        return parts.joined(separator: ", ")
    }

    /// Where runners register and in which group.
    static func scope(of configuration: Configuration) -> String {
        if let group = configuration.runnerGroup {
            return "\(configuration.runnerScope.rawValue) (runner group '\(group)')"
        }
        return "\(configuration.runnerScope.rawValue) (runner group id \(configuration.runnerGroupID))"
    }

    /// The kind of credentials, never a credential.
    static func githubAccess(of configuration: Configuration) -> String {
        if let appID = configuration.githubAppID {
            return "GitHub App \(appID)"
        }
        let owners = configuration.githubOwnerTokens.count
        switch (owners, configuration.githubToken != nil) {
        case (0, true): return "one token (GITHUB_TOKEN)"
        case (0, false): return "none (DRY_RUN)"
        case (_, true): return "a token for each of \(owners) owners (GITHUB_TOKENS), GITHUB_TOKEN for the others"
        case (_, false): return "a token for each of \(owners) owners (GITHUB_TOKENS)"
        }
    }
}
