import Synchronization

/// Remembers the last `capacity` delivery ids that were handled to a final answer, so a redelivery
/// (which keeps its `X-GitHub-Delivery`) is answered 200 without doing the work again.
///
/// Memory is bounded: a ring of ids plus a set, about 100 bytes per id.
package final class DeliveryLog: Sendable {
    private struct State {
        var ring: [String?]
        var next = 0
        var known: Set<String> = []
    }

    private let state: Mutex<State>

    package init(capacity: Int = 10_000) {
        precondition(capacity > 0)
        state = Mutex(State(ring: Array(repeating: nil, count: capacity)))
    }

    package func contains(_ id: String) -> Bool {
        state.withLock { $0.known.contains(id) }
    }

    /// Records `id`; the oldest id is forgotten when full.
    package func record(_ id: String) {
        state.withLock { state in
            guard !state.known.contains(id) else { return }
            if let evicted = state.ring[state.next] {
                state.known.remove(evicted)
            }
            state.ring[state.next] = id
            state.known.insert(id)
            state.next = (state.next + 1) % state.ring.count
        }
    }

    package var count: Int { state.withLock { $0.known.count } }
}
