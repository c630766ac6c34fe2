import CLinuxShims
import ServiceLifecycle

/// Hands memory freed after a burst back to the system. glibc keeps freed heap pages for reuse, so without this a
/// burst's peak stays in RSS for good (measured: see BENCHMARKS.md).
///
/// The interval is deliberately not a multiple of the cluster monitor's 15 s: trimming while a Job list is being
/// decoded releases nothing, and with a 30 s period every trim met a list (measured: RSS never came down).
public struct MemoryTrimmer: Service {
    private let interval: Duration

    public init(interval: Duration = .seconds(7)) {
        self.interval = interval
    }

    /// Tunes glibc's malloc for a long-running service with bursts: at most two arenas (fewer, fuller arenas
    /// fragment less than one per thread), and blocks of 256 KiB or more (response bodies, Job lists) mapped on
    /// their own so that freeing them returns the memory at once.
    public static func tuneAllocator() {
        _ = kar_limit_malloc_arenas(2)
        _ = kar_fix_malloc_mmap_threshold(256 * 1024)
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            _ = kar_malloc_trim()
        }
    }
}
