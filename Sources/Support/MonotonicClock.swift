/// The monotonic time that every time rule reads (reaper deadlines, idle timeouts, the Lease's expiry), injected so
/// that tests advance it instead of sleeping. Never compared with a time the API server or GitHub wrote: a rule's
/// clock starts when this process first saw the state it times ("first seen").
package struct MonotonicClock: Sendable {
    package var now: @Sendable () -> ContinuousClock.Instant

    package init(now: @escaping @Sendable () -> ContinuousClock.Instant) {
        self.now = now
    }

    /// The process's `ContinuousClock`.
    package static let continuous = MonotonicClock { ContinuousClock.now }
}
