import Kubernetes
import Logging
import Synchronization

/// The repositories the reconciler watches: every owner/repo seen in a signature-verified delivery, kept in a
/// ConfigMap so a restart (or another replica) knows them too, plus `REPOSITORIES`.
package final class RepositoryRegistry: Sendable {
    package struct Repository: Sendable, Hashable, Comparable, CustomStringConvertible {
        package var owner: String
        package var name: String

        package init(owner: String, name: String) {
            self.owner = owner
            self.name = name
        }

        package var description: String { "\(owner)/\(name)" }
        package static func < (a: Repository, b: Repository) -> Bool { a.description < b.description }
    }

    /// ConfigMap name and key.
    package static let configMapName = "kube-actions-runner-repositories"
    static let key = "repositories"

    private let kubernetes: any KubernetesAPI
    private let namespace: String
    private let logger: Logger
    private let known: Mutex<Set<Repository>>
    /// Repositories the reconciler visits first: those with a sign of a lost delivery, then those with a recent
    /// delivery, each until its next visit (this replica's; a follower's signs stay with it).
    private let flagged = Mutex<(loss: [Repository], recent: [Repository])>(([], []))

    package init(kubernetes: any KubernetesAPI, namespace: String, configured: [Repository], logger: Logger) {
        self.kubernetes = kubernetes
        self.namespace = namespace
        self.logger = logger
        self.known = Mutex(Set(configured))
    }

    /// Parses `REPOSITORIES`: `owner/repo` separated by commas or whitespace.
    package static func parse(_ text: String?) -> (repositories: [Repository], invalid: [String]) {
        var repositories: [Repository] = []
        var invalid: [String] = []
        for item in (text ?? "").split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\n" || $0 == "\t" }) {
            let parts = item.split(separator: "/", omittingEmptySubsequences: false)
            if parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty {
                repositories.append(Repository(owner: String(parts[0]), name: String(parts[1])))
            } else {
                invalid.append(String(item))
            }
        }
        return (repositories, invalid)
    }

    /// Records a repository seen in a verified delivery; stores it when it is new (in the background).
    package func note(owner: String, repo: String) {
        let repository = Repository(owner: owner, name: repo)
        let isNew = known.withLock { $0.insert(repository).inserted }
        guard isNew else { return }
        Task { await self.store() }
    }

    /// Puts a repository first in the reconciler's next cycle: `loss` for a sign that a delivery was lost (before
    /// every other), else for a recent delivery.
    package func prioritize(owner: String, repo: String, loss: Bool = false) {
        let repository = Repository(owner: owner, name: repo)
        flagged.withLock { flagged in
            if loss {
                flagged.recent.removeAll { $0 == repository }
                if !flagged.loss.contains(repository) { flagged.loss.append(repository) }
            } else if !flagged.loss.contains(repository) && !flagged.recent.contains(repository) {
                flagged.recent.append(repository)
            }
        }
    }

    /// The repositories to visit first, signs of loss before recent deliveries, each in the order flagged.
    package func priority() -> [Repository] {
        flagged.withLock { $0.loss + $0.recent }
    }

    /// A repository was visited: it is no longer flagged.
    package func visited(_ repository: Repository) {
        flagged.withLock { flagged in
            flagged.loss.removeAll { $0 == repository }
            flagged.recent.removeAll { $0 == repository }
        }
    }

    /// Everything known: this replica's, the ConfigMap's (other replicas', earlier runs'), and `REPOSITORIES`.
    package func all() async -> [Repository] {
        if let stored = try? await kubernetes.configMap(name: Self.configMapName, namespace: namespace) {
            let repositories = Self.decode(stored.data[Self.key])
            known.withLock { $0.formUnion(repositories) }
        }
        return known.withLock { $0.sorted() }
    }

    /// Merges what this replica knows into the ConfigMap (create, or replace at the version read; retried on conflict).
    package func store() async {
        for _ in 0..<3 {
            do throws(KubernetesAPIError) {
                let stored = try await kubernetes.configMap(name: Self.configMapName, namespace: namespace)
                let merged = known.withLock { known -> Set<Repository> in
                    known.formUnion(Self.decode(stored?.data[Self.key]))
                    return known
                }
                if let stored, Self.decode(stored.data[Self.key]) == merged { return }
                var data = stored?.data ?? [:]
                data[Self.key] = merged.sorted().map(\.description).joined(separator: "\n")
                try await kubernetes.saveConfigMap(
                    name: Self.configMapName,
                    namespace: namespace,
                    ConfigMapData(resourceVersion: stored?.resourceVersion, data: data)
                )
                return
            } catch  where error.kind == .conflict || error.kind == .alreadyExists {
                continue
            } catch {
                logger.warning("storing the known repositories failed", metadata: ["error": "\(error)"])
                return
            }
        }
    }

    static func decode(_ text: String?) -> Set<Repository> {
        Set(parse(text).repositories)
    }
}
