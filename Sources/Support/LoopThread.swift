#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A detached POSIX thread for an event loop (the server's, the HTTP client's), so blocking epoll never runs on the cooperative pool.
package final class LoopThread: @unchecked Sendable {
    private let body: @Sendable () -> Void

    package init(body: @escaping @Sendable () -> Void) {
        self.body = body
    }

    package func start() {
        let box = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let result = pthread_create(
            &thread,
            nil,
            { raw in
                let this = Unmanaged<LoopThread>.fromOpaque(raw!).takeRetainedValue()
                this.body()
                return nil
            },
            box.toOpaque()
        )
        precondition(result == 0, "pthread_create failed: \(result)")
        pthread_detach(thread)
    }
}
