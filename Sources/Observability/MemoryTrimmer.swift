import CLinuxShims
import ServiceLifecycle
import Support

/// Hands memory back to the system once it is no longer in use.
///
/// Two kinds of memory stay resident after use. glibc keeps freed heap pages for reuse, so without a trim a burst's
/// peak stays in RSS for good: `malloc_trim` runs every tick. And the kernel maps file pages 64 KiB at a time around
/// each page fault (fault-around), so start-up code, a burst's code paths and their neighbours (of a 60 MiB static
/// binary and libcurl's libraries) stay mapped long after they ran: when asked to (`releaseFilePages`, the
/// `RELEASE_CODE_PAGES` setting), once the service has been quiet for a whole tick after start-up or after
/// deliveries, the clean pages of read-only file mappings are unmapped (`MADV_DONTNEED`). They stay in the page
/// cache; what runs again maps them back with a minor fault.
///
/// The interval is deliberately not a multiple of the cluster monitor's 15 s: a trim that meets a Job list being
/// decoded releases nothing, and a period in step with the lists would meet one every time.
package struct MemoryTrimmer: Service {
    private let interval: Duration
    /// Unmaps the clean file pages (`releaseFilePages`), or nothing when the setting is off.
    private let release: @Sendable () -> Void
    private let clock: MonotonicClock
    private let activity: @Sendable () -> Int

    /// - Parameter activity: a count that grows with every webhook delivery answered; file pages are released
    ///   only when it did not change over a tick, so code that deliveries use is never unmapped under them.
    /// - Parameter releaseFilePages: whether quiet ticks also unmap the clean pages of read-only file mappings.
    /// - Parameter clock: the ticks' clock.
    /// - Parameter releaser: what a quiet tick calls when `releaseFilePages` is set (the system call; tests count).
    package init(
        interval: Duration = .seconds(7),
        releaseFilePages: Bool = false,
        clock: some Clock<Duration> = ContinuousClock(),
        releaser: @escaping @Sendable () -> Void = { _ = MemoryTrimmer.releaseFilePages() },
        activity: @escaping @Sendable () -> Int
    ) {
        self.interval = interval
        self.release = releaseFilePages ? releaser : { @Sendable in }
        self.clock = MonotonicClock(clock)
        self.activity = activity
    }

    /// Tunes glibc's malloc for a long-running service with bursts: at most two arenas (fewer, fuller arenas
    /// fragment less than one per thread), and blocks of 256 KiB or more (response bodies, Job lists) mapped on
    /// their own so that freeing them returns the memory at once.
    package static func tuneAllocator() {
        _ = kar_limit_malloc_arenas(2)
        _ = kar_fix_malloc_mmap_threshold(256 * 1024)
    }

    package func run() async throws {
        var policy = FilePagePolicy(activity: activity())
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await clock.sleep(for: interval) }
            _ = kar_malloc_trim()
            if policy.shouldRelease(activity: activity()) { release() }
        }
    }

    /// When to unmap file pages: after a tick without deliveries that follows start-up or deliveries; not again
    /// while nothing happens (the background loops' own pages are the idle working set, and unmapping them every
    /// tick would only fault them back in).
    struct FilePagePolicy {
        private var lastSeen: Int
        private var releasedAt: Int?

        init(activity: Int) {
            lastSeen = activity
        }

        mutating func shouldRelease(activity: Int) -> Bool {
            defer { lastSeen = activity }
            guard activity == lastSeen, releasedAt != activity else { return false }
            releasedAt = activity
            return true
        }
    }

    /// Unmaps the clean pages of this process's read-only file mappings; returns the bytes that were resident in them.
    @discardableResult
    package static func releaseFilePages() -> Int {
        kar_release_file_pages()
    }
}
