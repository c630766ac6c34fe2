import Synchronization

/// A clock on which every sleep returns at once and moves time on by what it slept: for code that pauses (a retry's
/// backoff) where a test checks that it paused, and for how long (`elapsed`), not what happens meanwhile.
package final class ImmediateClock: Clock {
    package struct Instant: InstantProtocol, Hashable {
        fileprivate var offset: Duration

        package func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        package func duration(to other: Instant) -> Duration { other.offset - offset }
        package static func < (a: Instant, b: Instant) -> Bool { a.offset < b.offset }
    }

    private let current = Mutex(Instant(offset: .zero))

    package init() {}

    package var now: Instant { current.withLock { $0 } }

    package var minimumResolution: Duration { .zero }

    /// Time slept on this clock since it was made.
    package var elapsed: Duration { now.offset }

    package func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        try Task.checkCancellation()
        current.withLock { $0 = max($0, deadline) }
    }
}
