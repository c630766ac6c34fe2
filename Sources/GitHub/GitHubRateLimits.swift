import Support
import Synchronization

/// GitHub's rate-limit windows as the client last heard of them, one per credential (`GitHubCredential.rateLimitKey`):
/// one installation's exhausted limit does not pause another owner's calls.
final class GitHubRateLimits: Sendable {
    private struct Window {
        /// The last `x-ratelimit-remaining`.
        var remaining: Int64?
        /// Epoch seconds until which calls are refused.
        var pausedUntil: Double = 0
    }

    private struct State {
        var windows: [String: Window] = [:]
        /// Which window served each owner's last call (lowercased owner → key).
        var owners: [String: String] = [:]
    }

    private let state = Mutex(State())

    /// Until when calls with the credential `key` must wait (epoch seconds; 0 when they need not).
    func pausedUntil(_ key: String) -> Double {
        state.withLock { $0.windows[key]?.pausedUntil ?? 0 }
    }

    func pause(_ key: String, until: Double) {
        state.withLock {
            $0.windows[key, default: Window()].pausedUntil = max($0.windows[key]?.pausedUntil ?? 0, until)
        }
    }

    func record(remaining: Int64, key: String) {
        state.withLock { $0.windows[key, default: Window()].remaining = remaining }
    }

    /// `owner`'s calls are made with the credential `key`.
    func remember(owner: String, key: String) {
        state.withLock { $0.owners[owner.asciiLowercased] = key }
    }

    /// The remaining requests of the window that served `owner`'s last call.
    func remaining(owner: String) -> Int64? {
        state.withLock { state in
            state.owners[owner.asciiLowercased].flatMap { state.windows[$0]?.remaining }
        }
    }

    /// The lowest remaining over every window heard of.
    var lowestRemaining: Int64? {
        state.withLock { $0.windows.values.compactMap(\.remaining).min() }
    }
}
