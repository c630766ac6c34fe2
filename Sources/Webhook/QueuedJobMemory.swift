import Synchronization

/// The ids of the jobs this process saw `queued`, the most recent `capacity` of them: an `in_progress` or
/// `completed` delivery for a job it never saw queued is a sign that the `queued` delivery was lost.
package final class QueuedJobMemory: Sendable {
    private struct State {
        var ids: Set<Int64> = []
        var order: [Int64] = []
        var oldest = 0
    }

    package let capacity: Int
    /// Epoch seconds when it started remembering: a job queued before cannot have been seen.
    package let since: Double
    private let state = Mutex(State())

    package init(capacity: Int = 20_000, since: Double) {
        self.capacity = max(1, capacity)
        self.since = since
    }

    /// Remembers a job seen `queued`; the oldest id goes once `capacity` are remembered.
    package func remember(_ id: Int64) {
        state.withLock { state in
            guard state.ids.insert(id).inserted else { return }
            if state.order.count < capacity {
                state.order.append(id)
            } else {
                state.ids.remove(state.order[state.oldest])
                state.order[state.oldest] = id
                state.oldest = (state.oldest + 1) % capacity
            }
        }
    }

    package func contains(_ id: Int64) -> Bool {
        state.withLock { $0.ids.contains(id) }
    }
}
