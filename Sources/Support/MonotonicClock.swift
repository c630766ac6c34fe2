/// The clock every time-driven part reads and sleeps on (reaper deadlines, idle timeouts, the Lease's expiry, the
/// background loops' intervals, retry pauses, the webhook deadline): any `Clock<Duration>` behind one concrete type,
/// so a component keeps it without becoming generic. Components take `some Clock<Duration>` (the process's
/// `ContinuousClock` by default); tests pass a clock they advance instead of sleeping.
///
/// Never compared with a time the API server or GitHub wrote: a rule's clock starts when this process first saw the
/// state it times ("first seen"). Where a remote epoch time must be compared (GitHub's rate-limit reset),
/// `epochSeconds` gives wall time that moves with this clock.
package struct MonotonicClock: Clock {
    /// A point on the wrapped clock, as the time since this `MonotonicClock` was made from it.
    package struct Instant: InstantProtocol, Hashable {
        fileprivate var offset: Duration

        package func advanced(by duration: Duration) -> Instant {
            Instant(offset: offset + duration)
        }

        package func duration(to other: Instant) -> Duration {
            other.offset - offset
        }

        package static func < (a: Instant, b: Instant) -> Bool { a.offset < b.offset }

        package static func + (instant: Instant, duration: Duration) -> Instant { instant.advanced(by: duration) }

        package static func - (instant: Instant, duration: Duration) -> Instant {
            instant.advanced(by: .zero - duration)
        }

        package static func - (a: Instant, b: Instant) -> Duration { b.duration(to: a) }
    }

    private let elapsed: @Sendable () -> Duration
    private let sleepUntil: @Sendable (_ offset: Duration, _ tolerance: Duration?) async throws -> Void
    private let wallTimeAtStart: Double
    package let minimumResolution: Duration

    /// Wraps `clock`; a `MonotonicClock` is kept as it is (instants and wall time included).
    ///
    /// - Parameter wallTimeAtStart: epoch seconds at the wrapped clock's current time (tests fix it).
    package init<C: Clock<Duration>>(_ clock: C, wallTimeAtStart: Double = Timestamps.now()) {
        if let clock = clock as? MonotonicClock {
            self = clock
            return
        }
        let start = clock.now
        elapsed = { start.duration(to: clock.now) }
        sleepUntil = { offset, tolerance in
            try await clock.sleep(until: start.advanced(by: offset), tolerance: tolerance)
        }
        self.wallTimeAtStart = wallTimeAtStart
        minimumResolution = clock.minimumResolution
    }

    package var now: Instant { Instant(offset: elapsed()) }

    /// Sleeps on the wrapped clock; throws `CancellationError` at once when the task is cancelled.
    package func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        try await sleepUntil(deadline.offset, tolerance)
    }

    /// Epoch seconds that move with this clock: the wall time read when it was made, advanced by the clock, so a step
    /// of the system clock neither shortens nor stretches a span measured on it, while it can still be compared with
    /// an epoch time another system wrote (GitHub's `x-ratelimit-reset`).
    package var epochSeconds: Double {
        let (seconds, attoseconds) = elapsed().components
        return wallTimeAtStart + Double(seconds) + Double(attoseconds) / 1e18
    }
}
