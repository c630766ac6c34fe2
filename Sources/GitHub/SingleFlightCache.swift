import Synchronization

/// Values fetched from GitHub once per key and kept while fresh; however many callers ask for a missing or stale
/// value at once, one fetch runs and they all get its result (single flight). Failures are not kept: the next
/// caller fetches again.
final class SingleFlightCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    typealias Fetch = @Sendable () async -> Result<Value, GitHubAPIError>

    private enum Entry {
        case ready(Value)
        case pending(id: UInt64, Task<Result<Value, GitHubAPIError>, Never>)
    }

    private enum Lookup {
        case ready(Value)
        case wait(Task<Result<Value, GitHubAPIError>, Never>)
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var nextID: UInt64 = 0
        /// Callers waiting for each key's fetch.
        var waiting: [Key: Int] = [:]
    }

    private let state = Mutex(State())

    init() {}

    /// The cached value for `key` if `isFresh` holds for it, else the result of the fetch in flight, else of a new
    /// fetch. The fetch runs in a task of its own, so a caller that gives up does not cancel it for the others.
    func value(
        for key: Key,
        isFresh: (Value) -> Bool,
        fetch: @escaping Fetch
    ) async throws(GitHubAPIError) -> Value {
        let lookup = state.withLock { state -> Lookup in
            switch state.entries[key] {
            case .ready(let value) where isFresh(value):
                return .ready(value)
            case .pending(_, let task):
                state.waiting[key, default: 0] += 1
                return .wait(task)
            default:
                let id = state.nextID
                state.nextID += 1
                // Created under the lock, so the task's own `finish` (which takes it) runs after the entry exists.
                let task = Task { [self] in
                    let result = await fetch()
                    finish(key, id: id, with: result)
                    return result
                }
                state.entries[key] = .pending(id: id, task)
                state.waiting[key, default: 0] += 1
                return .wait(task)
            }
        }
        switch lookup {
        case .ready(let value):
            return value
        case .wait(let task):
            let result = await task.value
            state.withLock { state in
                state.waiting[key, default: 1] -= 1
                if state.waiting[key] == 0 { state.waiting[key] = nil }
            }
            return try result.get()
        }
    }

    /// How many callers wait for the fetch of `key` now (the one that started it included).
    func waiting(for key: Key) -> Int {
        state.withLock { $0.waiting[key] ?? 0 }
    }

    /// The cached value for `key`, fresh or not; nil while none is cached.
    func cached(_ key: Key) -> Value? {
        state.withLock { state in
            if case .ready(let value)? = state.entries[key] { return value }
            return nil
        }
    }

    /// Caches `value` for `key` (a fact learned elsewhere) unless a value is cached or being fetched already.
    func setIfAbsent(_ value: Value, for key: Key) {
        state.withLock { state in
            guard state.entries[key] == nil else { return }
            state.entries[key] = .ready(value)
        }
    }

    /// Drops the cached value for `key` if `matches` holds for it (not a newer one fetched meanwhile); true if one
    /// was dropped.
    @discardableResult
    func remove(_ key: Key, where matches: (Value) -> Bool) -> Bool {
        state.withLock { state in
            guard case .ready(let value)? = state.entries[key], matches(value) else { return false }
            state.entries[key] = nil
            return true
        }
    }

    /// Drops every cached value for which `matches` holds.
    func removeAll(where matches: (Value) -> Bool) {
        state.withLock { state in
            for (key, entry) in state.entries {
                if case .ready(let value) = entry, matches(value) { state.entries[key] = nil }
            }
        }
    }

    private func finish(_ key: Key, id: UInt64, with result: Result<Value, GitHubAPIError>) {
        state.withLock { state in
            guard case .pending(let pending, _)? = state.entries[key], pending == id else { return }
            switch result {
            case .success(let value): state.entries[key] = .ready(value)
            case .failure: state.entries[key] = nil
            }
        }
    }
}
