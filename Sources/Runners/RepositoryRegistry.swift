import Kubernetes
import Logging
import Support
import Synchronization

/// The repositories the reconciler watches: `REPOSITORIES`, and every owner/repo with a job this service runs (a
/// verified `queued` delivery whose labels match, a delivery about a runner of this service, a matching queued job
/// the reconciler saw), kept in a ConfigMap with when that last happened, so a restart (or another replica) knows
/// them too. A repository of the ConfigMap without such a job for `forgetAfter` (30 days) is forgotten;
/// `REPOSITORIES` never are.
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
    /// Repository → epoch seconds of its last matching job (`REPOSITORIES` are kept apart, never forgotten).
    private let known: Mutex<[Repository: Double]>
    private let configured: Set<Repository>
    private let clock: MonotonicClock
    private let forgetAfter: Double
    /// Repositories the reconciler visits first: those with a sign of a lost delivery, then those with a recent
    /// delivery, each until its next visit (this replica's; a follower's signs stay with it).
    private let flagged = Mutex<(loss: [Repository], recent: [Repository])>(([], []))

    /// - Parameters:
    ///   - configured: `REPOSITORIES`, always watched.
    ///   - forgetAfter: how long a repository without a matching job stays known.
    ///   - clock: gives the epoch seconds of each match (`MonotonicClock.epochSeconds`).
    package init(
        kubernetes: any KubernetesAPI,
        namespace: String,
        configured: [Repository],
        logger: Logger,
        forgetAfter: Duration = .seconds(30 * 24 * 3600),
        clock: some Clock<Duration> = ContinuousClock()
    ) {
        self.kubernetes = kubernetes
        self.namespace = namespace
        self.logger = logger
        self.configured = Set(configured)
        self.known = Mutex([:])
        self.clock = MonotonicClock(clock)
        self.forgetAfter = Double(forgetAfter.components.seconds)
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

    /// Records a job of this repository this service runs (a matching queued delivery, a delivery about one of its
    /// runners): the repository is known from now on, its last match is now, and the reconciler visits it first
    /// when `recent`. Stored when it is new, or when its stored match is a day old (in the background).
    package func note(owner: String, repo: String, recent: Bool = true) {
        let repository = Repository(owner: owner, name: repo)
        let now = clock.epochSeconds
        let changed = known.withLock { known in
            let last = known[repository]
            known[repository] = max(last ?? now, now)
            return last.map { now - $0 >= 24 * 3600 } ?? true
        }
        if recent { prioritize(owner: owner, repo: repo) }
        guard changed else { return }
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

    /// Everything known: this replica's, the ConfigMap's (other replicas', earlier runs'), and `REPOSITORIES`;
    /// without those whose last match is older than `forgetAfter`.
    package func all() async -> [Repository] {
        if let stored = try? await kubernetes.configMap(name: Self.configMapName, namespace: namespace) {
            let repositories = Self.decode(stored.data[Self.key], now: clock.epochSeconds)
            known.withLock { known in known.merge(repositories, uniquingKeysWith: max) }
        }
        let now = clock.epochSeconds
        let current = known.withLock { known in
            known = known.filter { now - $0.value < forgetAfter }
            return Set(known.keys)
        }
        return current.union(configured).sorted()
    }

    /// Merges what this replica knows into the ConfigMap (create, or replace at the version read; retried on
    /// conflict), each repository with its last match; those not matched for `forgetAfter` leave it.
    package func store() async {
        for _ in 0..<3 {
            do throws(KubernetesAPIError) {
                let stored = try await kubernetes.configMap(name: Self.configMapName, namespace: namespace)
                let now = clock.epochSeconds
                let storedRepositories = Self.decode(stored?.data[Self.key], now: now)
                let merged = known.withLock { known -> [Repository: Double] in
                    known.merge(storedRepositories, uniquingKeysWith: max)
                    known = known.filter { now - $0.value < forgetAfter }
                    return known
                }
                let text = Self.encode(merged)
                if let stored, stored.data[Self.key] == text { return }
                var data = stored?.data ?? [:]
                data[Self.key] = text
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

    /// One line a repository: `owner/repo <epoch seconds of its last match>`.
    static func encode(_ repositories: [Repository: Double]) -> String {
        repositories.sorted { $0.key < $1.key }.map { "\($0.key) \(Int64($0.value))" }.joined(separator: "\n")
    }

    /// Reads `encode`'s lines; a line without a time (written before times were kept) counts as matched `now`.
    static func decode(_ text: String?, now: Double) -> [Repository: Double] {
        var repositories: [Repository: Double] = [:]
        for line in (text ?? "").split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let name = fields.first, let repository = parse(String(name)).repositories.first else { continue }
            let time = fields.dropFirst().first.flatMap { Double($0) } ?? now
            repositories[repository] = max(repositories[repository] ?? time, time)
        }
        return repositories
    }
}
