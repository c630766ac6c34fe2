import Support
import Synchronization

/// A clock that tests advance by hand: no test sleeps for a rule's timeout, a loop's interval or a retry's pause.
///
/// A task sleeping on it waits until the test advances past its deadline, or until the task is cancelled (then at
/// once). `advance(by:)` moves time in one step: it resumes every sleeper whose deadline it reaches, earliest first,
/// and a task that sleeps again after waking sleeps from the new time. A test waits until a loop is asleep again
/// (`waitForSleepers`) before it advances, so each step is deterministic.
package final class ManualClock: Clock {
    package struct Instant: InstantProtocol, Hashable {
        fileprivate var offset: Duration

        package func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        package func duration(to other: Instant) -> Duration { other.offset - offset }
        package static func < (a: Instant, b: Instant) -> Bool { a.offset < b.offset }
    }

    private struct Sleeper {
        var id: Int
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now = Instant(offset: .zero)
        var sleepers: [Sleeper] = []
        var nextID = 0
    }

    private let state = Mutex(State())

    package init() {}

    package var now: Instant { state.withLock { $0.now } }

    package var minimumResolution: Duration { .zero }

    /// Time advanced since the clock was made.
    package var elapsed: Duration { now.offset }

    /// How many tasks sleep on this clock.
    package var sleepers: Int { state.withLock { $0.sleepers.count } }

    /// How long until each sleeper wakes, soonest first.
    package var sleeps: [Duration] {
        state.withLock { state in state.sleepers.map { state.now.duration(to: $0.deadline) }.sorted() }
    }

    package func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome = state.withLock { state -> Result<Void, any Error>? in
                    // The cancellation flag is set before the handler runs: a cancellation that came before this
                    // sleeper was added is seen here, one that comes after finds it in the list.
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if deadline <= state.now { return .success(()) }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let sleeper = state.withLock { state in
                state.sleepers.firstIndex { $0.id == id }.map { state.sleepers.remove(at: $0) }
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward by `duration`; every sleeper whose deadline that reaches is resumed, earliest first.
    package func advance(by duration: Duration) {
        let due = state.withLock { state -> [Sleeper] in
            state.now = state.now.advanced(by: duration)
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }.sorted { $0.deadline < $1.deadline }
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Waits until exactly `count` tasks sleep on this clock: a loop has done its turn's work and sleeps until the
    /// next. Fails the test after 10 s of real time (a loop that never went back to sleep).
    package func waitForSleepers(_ count: Int = 1) async throws {
        try await waitUntil("\(count) task(s) asleep on the clock") { self.sleepers == count }
    }

    /// The same clock in nanoseconds, as the HTTP server's event loop reads time (it waits in `epoll_wait`, not on a
    /// `Clock`).
    package var nanoseconds: @Sendable () -> UInt64 {
        { [self] in 1_000_000_000_000 + UInt64(self.elapsed.nanoseconds) }
    }
}
