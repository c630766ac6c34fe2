/// The monotonic time that every time rule reads (reaper deadlines, idle timeouts, the Lease's expiry), injected so
/// that tests advance it instead of sleeping. Never compared with a time the API server or GitHub wrote: a rule's
/// clock starts when this process first saw the state it times ("first seen").
public struct MonotonicClock: Sendable {
    public var now: @Sendable () -> ContinuousClock.Instant

    public init(now: @escaping @Sendable () -> ContinuousClock.Instant) {
        self.now = now
    }

    /// The process's `ContinuousClock`.
    public static let continuous = MonotonicClock { ContinuousClock.now }
}
