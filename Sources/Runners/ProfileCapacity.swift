import Synchronization

/// Keeps a profile's runner Jobs at its `maxRunners`, counted from the cluster and exact under a burst.
///
/// The count is the profile's unfinished runner Jobs as listed (label `kube-actions-runner/profile`), united with
/// the Jobs this process is creating or has just created: a list that started before a Job was created cannot show
/// it, so the Job is reserved from the moment it is counted until a list that started after its creation answered.
/// Concurrent provisionings therefore never both see the last free place: a burst of N against a cap of K creates
/// exactly K (within one replica; see ARCHITECTURE.md for several).
package final class ProfileCapacity: Sendable {
    private struct State {
        /// Lists started so far: a list's number orders it against creations.
        var listsStarted = 0
        /// Profile → Job name → the number of lists started when its creation ended (`Int.max` while in flight).
        var reserved: [String: [String: Int]] = [:]
    }

    private let state = Mutex(State())

    package init() {}

    /// Call before listing a profile's Jobs; pass the answer to `reserve`.
    package func listStarting() -> Int {
        state.withLock { state in
            defer { state.listsStarted += 1 }
            return state.listsStarted
        }
    }

    /// What `reserve` did.
    package enum Reservation: Sendable, Equatable {
        /// A place is held for the Job: `created` or `release` it.
        case reserved
        /// The Job is already counted (it exists, or another provisioning is creating it): nothing held.
        case counted
        /// No place: this many are active.
        case full(active: Int)
    }

    /// Takes a place for `job` if the profile has one.
    ///
    /// - Parameters:
    ///   - listed: the profile's unfinished Jobs, from a list numbered `list` (`listStarting()`).
    package func reserve(
        _ job: String,
        profile: String,
        cap: Int,
        listed: Set<String>,
        list: Int
    ) -> Reservation {
        state.withLock { state in
            var reserved = state.reserved[profile, default: [:]]
            // A Job whose creation ended before this list started is in the list if it still exists.
            reserved = reserved.filter { _, ended in ended > list }
            let active = listed.union(reserved.keys)
            defer { state.reserved[profile] = reserved }
            if active.contains(job) { return .counted }  // its create answers AlreadyExists
            guard active.count < cap else { return .full(active: active.count) }
            reserved[job] = Int.max
            return .reserved
        }
    }

    /// The Job was created: it stays counted until a list that starts from now on answers.
    package func created(_ job: String, profile: String) {
        state.withLock { state in
            guard state.reserved[profile]?[job] != nil else { return }
            state.reserved[profile]?[job] = state.listsStarted
        }
    }

    /// The Job was not created (or was removed again): its place is free.
    package func release(_ job: String, profile: String) {
        _ = state.withLock { state in state.reserved[profile]?.removeValue(forKey: job) }
    }
}
