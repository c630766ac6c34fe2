import Support
import Synchronization

/// A ceiling on the GitHub points one part of the process spends per minute, on the injected clock.
///
/// GitHub's secondary limit allows about 900 points a minute for REST per credential (a GET is 1 point, a POST,
/// PATCH, PUT or DELETE 5), whatever the hourly budget; the reconciler keeps to a share of it so deliveries keep
/// theirs. The window slides: a point spent at `t` frees at `t + 60 s`.
package final class PointsBudget: Sendable {
    /// Points of a GET.
    package static let read = 1
    /// Points of a POST, PATCH, PUT or DELETE.
    package static let write = 5

    package let perMinute: Int
    private let clock: MonotonicClock
    private let spent = Mutex<[(at: MonotonicClock.Instant, points: Int)]>([])

    package init(perMinute: Int, clock: some Clock<Duration> = ContinuousClock()) {
        self.perMinute = perMinute
        self.clock = MonotonicClock(clock)
    }

    /// Points spent in the minute up to now.
    package var spentThisMinute: Int {
        spent.withLock { spent in
            forgetOld(&spent)
            return spent.reduce(0) { $0 + $1.points }
        }
    }

    /// Spends `points` when the points spent in the last minute stay within the ceiling with them; false,
    /// spending nothing, otherwise.
    package func spend(_ points: Int) -> Bool {
        spent.withLock { spent in
            forgetOld(&spent)
            guard spent.reduce(0, { $0 + $1.points }) + points <= perMinute else { return false }
            spent.append((clock.now, points))
            return true
        }
    }

    /// Records points already spent (a list's further pages, known only once it is read).
    package func charge(_ points: Int) {
        guard points > 0 else { return }
        spent.withLock { spent in
            forgetOld(&spent)
            spent.append((clock.now, points))
        }
    }

    /// Gives back `points` spent in advance for calls that were not made (a provisioning deferred before any call).
    package func refund(_ points: Int) {
        spent.withLock { spent in
            if let index = spent.lastIndex(where: { $0.points == points }) { spent.remove(at: index) }
        }
    }

    /// How long until the points spent in the last minute are at most `target`: zero when they already are.
    package func timeUntil(spentAtMost target: Int) -> Duration {
        spent.withLock { spent in
            forgetOld(&spent)
            var total = spent.reduce(0) { $0 + $1.points }
            for entry in spent where total > target {
                total -= entry.points
                if total <= target { return max(.zero, entry.at + .seconds(60) - clock.now) }
            }
            return .zero
        }
    }

    private func forgetOld(_ spent: inout [(at: MonotonicClock.Instant, points: Int)]) {
        let start = clock.now - .seconds(60)
        if let keep = spent.firstIndex(where: { $0.at > start }) {
            spent.removeFirst(keep)
        } else {
            spent.removeAll()
        }
    }
}
