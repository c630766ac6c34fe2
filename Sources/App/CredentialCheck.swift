import GitHub
import Logging
import ServiceLifecycle
import Synchronization

/// What the start-up check of the GitHub credentials found; `/ready` lists it.
final class CredentialFindings: Sendable {
    private let findings = Mutex<[GitHubCredentialFinding]>([])

    var all: [GitHubCredentialFinding] { findings.withLock { $0 } }

    func set(_ new: [GitHubCredentialFinding]) { findings.withLock { $0 = new } }
}

/// Checks the GitHub credentials once at start, through the API (read-only calls): each problem is logged with what
/// to do and kept for `/ready`. Runs beside the server, so a slow GitHub does not delay start-up.
struct CredentialCheck: Service {
    let github: GitHubClient
    let configuration: Configuration
    let findings: CredentialFindings
    let logger: Logger

    func run() async throws {
        let found = await github.checkCredentials(
            scope: configuration.runnerScope,
            repositories: configuration.repositories.map { .init(owner: $0.owner, name: $0.name) },
            owners: configuration.allowList.literalOwners,
            deliveries: configuration.redeliverFailedDeliveries
        )
        findings.set(found)
        if found.isEmpty {
            logger.info("GitHub credentials checked", metadata: ["scope": "\(configuration.runnerScope.rawValue)"])
        }
        for finding in found {
            let metadata: Logger.Metadata = ["subject": "\(finding.subject)", "problem": "\(finding.message)"]
            switch finding.severity {
            case .error: logger.error("GitHub credentials: this will not work", metadata: metadata)
            case .warning: logger.warning("GitHub credentials: this may not work", metadata: metadata)
            }
        }
        // Done, but a service of the group that returns early would stop the process: wait for shutdown.
        try? await gracefulShutdown()
    }
}
