import GitHub
import Synchronization

/// The webhooks verified deliveries came through, so the reconciler knows whose deliveries to list: at most
/// `limit`, the least recently seen forgotten first.
package final class HookRegistry: Sendable {
    package let limit: Int
    /// Least recently seen first.
    private let hooks = Mutex<[WebhookHook]>([])

    package init(limit: Int = 100) {
        self.limit = max(limit, 1)
    }

    /// A verified delivery's hook, from its `X-GitHub-Hook-ID` and `X-GitHub-Hook-Installation-Target-Type`
    /// headers and the repository it names; a hook of another kind, or without an id, is not kept.
    package func remember(targetType: String?, hookID: String?, owner: String, repo: String) {
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
}
