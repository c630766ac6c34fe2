import GitHub
import Synchronization

/// The webhooks verified deliveries came through, so the reconciler knows whose deliveries to list: at most
/// `limit`, the least recently seen forgotten first. Also the repositories those deliveries named, by id: an
/// organization's or an App's hook lists its deliveries with `repository_id`, not the name.
package final class HookRegistry: Sendable {
    package let limit: Int
    /// Repository ids remembered at most (about 100 bytes each).
    package let repositoryLimit: Int
    /// Least recently seen first.
    private let hooks = Mutex<[WebhookHook]>([])
    private let repositories = Mutex<(names: [Int64: RepositoryRegistry.Repository], order: [Int64])>(([:], []))

    package init(limit: Int = 100, repositoryLimit: Int = 10_000) {
        self.limit = max(limit, 1)
        self.repositoryLimit = max(repositoryLimit, 1)
    }

    /// A verified delivery's hook, from its `X-GitHub-Hook-ID` and `X-GitHub-Hook-Installation-Target-Type`
    /// headers and the repository it names (with the payload's `repository.id`); a hook of another kind, or without
    /// an id, is not kept, but the repository's id still is.
    package func remember(targetType: String?, hookID: String?, owner: String, repo: String, repositoryID: Int64? = nil)
    {
        if let repositoryID { remember(repositoryID: repositoryID, owner: owner, repo: repo) }
        guard let hook = WebhookHook(targetType: targetType, hookID: hookID, owner: owner, repo: repo) else { return }
        remember(hook)
    }

    package func remember(_ hook: WebhookHook) {
        hooks.withLock { hooks in
            if hooks.last == hook { return }
            hooks.removeAll { $0 == hook }
            hooks.append(hook)
            if hooks.count > limit { hooks.removeFirst(hooks.count - limit) }
        }
    }

    /// Every known hook, the most recently seen first.
    package var all: [WebhookHook] { hooks.withLock { Array($0.reversed()) } }

    /// Remembers which repository an id names (from a verified delivery); the oldest id goes once `repositoryLimit`
    /// are remembered.
    package func remember(repositoryID: Int64, owner: String, repo: String) {
        let repository = RepositoryRegistry.Repository(owner: owner, name: repo)
        repositories.withLock { state in
            if state.names.updateValue(repository, forKey: repositoryID) == nil { state.order.append(repositoryID) }
            if state.order.count > repositoryLimit {
                let excess = state.order.count - repositoryLimit
                for id in state.order.prefix(excess) { state.names[id] = nil }
                state.order.removeFirst(excess)
            }
        }
    }

    /// The repository a verified delivery named with this id, if one did.
    package func repository(id: Int64) -> RepositoryRegistry.Repository? {
        repositories.withLock { $0.names[id] }
    }
}
