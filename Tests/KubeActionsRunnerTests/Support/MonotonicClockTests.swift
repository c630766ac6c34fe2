import Testing

@testable import Support
@testable import TestSupport

@Suite struct MonotonicClockTests {
    @Test func measuresAndSleepsOnTheClockItWraps() async throws {
        let time = ManualClock()
        let clock = MonotonicClock(time)
        let start = clock.now
        time.advance(by: .seconds(5))
        #expect(clock.now - start == .seconds(5))
        let sleeper = Task { try await clock.sleep(for: .seconds(10)) }
        try await time.waitForSleepers(1)
        #expect(time.sleeps == [.seconds(10)])
        time.advance(by: .seconds(10))
        try await sleeper.value
        #expect(clock.now - start == .seconds(15))
    }

    @Test func aCancelledSleepEndsAtOnce() async throws {
        let time = ManualClock()
        let clock = MonotonicClock(time)
        let sleeper = Task { try await clock.sleep(for: .seconds(3600)) }
        try await time.waitForSleepers(1)
        sleeper.cancel()
        await #expect(throws: CancellationError.self) { try await sleeper.value }
        #expect(time.sleepers == 0)
    }

    /// Epoch seconds read as the wall time when the clock was made, then move with the clock it wraps (so a step of
    /// the system clock does not move them).
    @Test func readsEpochSecondsThatMoveWithTheClock() {
        let time = ManualClock()
        let clock = MonotonicClock(time, wallTimeAtStart: 1_700_000_000)
        #expect(clock.epochSeconds == 1_700_000_000)
        time.advance(by: .milliseconds(1500))
        #expect(clock.epochSeconds == 1_700_000_001.5)
        #expect(abs(MonotonicClock(ContinuousClock()).epochSeconds - Timestamps.now()) < 5)
    }

    @Test func keepsAMonotonicClockAsItIs() {
        let time = ManualClock()
        let clock = MonotonicClock(time, wallTimeAtStart: 1_700_000_000)
        time.advance(by: .seconds(1))
        let again = MonotonicClock(clock)
        #expect(again.now == clock.now && again.epochSeconds == 1_700_000_001)
    }
}
