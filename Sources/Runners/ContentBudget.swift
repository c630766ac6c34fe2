import Support
import Synchronization

/// GitHub's limits on content-creating requests, kept per credential before GitHub has to: in general no more than
/// 80 a minute and 500 an hour (JIT configurations and runner deletions are such requests), and GitHub says an
/// integration that keeps meeting them may be banned. Sliding windows on the injected clock.
package final class ContentBudget: Sendable {
    package struct Configuration: Sendable, Equatable {
        /// `CONTENT_REQUESTS_PER_MINUTE`.
        package var perMinute = 80
        /// `CONTENT_REQUESTS_PER_HOUR`.
        package var perHour = 500

        package init(perMinute: Int = 80, perHour: Int = 500) {
            self.perMinute = perMinute
            self.perHour = perHour
        }
    }

    package let configuration: Configuration
    private let clock: MonotonicClock
    /// Credential key → when each of its requests of the last hour was made, oldest first.
    private let made = Mutex<[String: [MonotonicClock.Instant]]>([:])

    package init(_ configuration: Configuration = .init(), clock: some Clock<Duration> = ContinuousClock()) {
        self.configuration = configuration
        self.clock = MonotonicClock(clock)
    }

    /// Takes one request of `key`'s budget; nil when taken, else why not (which limit is spent).
    package func take(_ key: String) -> String? {
        made.withLock { made in
            let now = clock.now
            var times = made[key, default: []].filter { $0 > now - .seconds(3600) }
            defer { made[key] = times }
            if times.count >= configuration.perHour {
                return "content-creating requests: \(configuration.perHour) an hour spent"
            }
            if times.filter({ $0 > now - .seconds(60) }).count >= configuration.perMinute {
                return "content-creating requests: \(configuration.perMinute) a minute spent"
            }
            times.append(now)
            return nil
        }
    }

    /// Counts a request that is made whatever the budget says (removing what a failed attempt registered).
    package func charge(_ key: String) {
        made.withLock { made in made[key, default: []].append(clock.now) }
    }
}
