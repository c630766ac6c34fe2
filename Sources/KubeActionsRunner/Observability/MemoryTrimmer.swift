import CLinuxShims
import ServiceLifecycle

/// Hands memory freed after a burst back to the system. glibc keeps freed heap pages for reuse, so without this a
/// burst's peak stays in RSS for good (measured: see BENCHMARKS.md).
public struct MemoryTrimmer: Service {
    private let interval: Duration

    public init(interval: Duration = .seconds(30)) {
        self.interval = interval
    }

    /// Limits glibc to two malloc arenas: fewer, fuller arenas fragment less than one per thread.
    public static func limitArenas() {
        _ = kar_limit_malloc_arenas(2)
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            _ = kar_malloc_trim()
        }
    }
}
