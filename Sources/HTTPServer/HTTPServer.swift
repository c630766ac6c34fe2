import Logging
import ServiceLifecycle
import Support

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A strict HTTP/1.1 server on POSIX sockets: one epoll thread for all connections, async handlers.
///
/// The socket is bound in `init`, so a bad port fails before the service starts and `port` is known at once
/// (tests bind port 0). `run()` serves until graceful shutdown or cancellation, then stops accepting,
/// finishes in-flight requests within `shutdownTimeout` and returns.
package final class HTTPServer: Service, Sendable {
    package struct Configuration: Sendable {
        package var host = "0.0.0.0"
        package var port = 8080
        package var maxConnections = 4096
        package var maxRequestLineBytes = 8 * 1024
        package var maxHeaderBytes = 64 * 1024
        package var maxHeaderFields = 100
        package var maxBodyBytes = 1024 * 1024
        /// The whole header section must arrive within this, counted from accept or from the first byte.
        package var headerTimeout: Duration = .seconds(10)
        package var bodyTimeout: Duration = .seconds(30)
        /// A keep-alive connection with no request in progress is closed after this.
        package var idleTimeout: Duration = .seconds(60)
        /// A client that does not read its response is dropped after this.
        package var writeTimeout: Duration = .seconds(30)
        /// The bound on finishing in-flight requests at shutdown.
        package var shutdownTimeout: Duration = .seconds(20)
        /// Request bodies received and not yet answered, over all connections together; heads and bodies of
        /// unknown length (chunked) are held to an eighth more.
        package var maxInflightBytes = 32 * 1024 * 1024
        /// When the in-flight bytes are at their limit, a request that has held bytes this long is cut (503)
        /// to make room for another; a delivery sent whole never holds them that long.
        package var budgetGrace: Duration = .seconds(1)
        /// A connection that waits this long for room, with no request old enough to cut, is answered 503.
        package var budgetWait: Duration = .seconds(2)
        /// Monotonic nanoseconds for every deadline; tests pass a clock they advance.
        package var clock: @Sendable () -> UInt64 = monotonicNanoseconds
        /// Where the server counts the load it sheds.
        package var statistics = HTTPServerStatistics()

        package init() {}
    }

    package typealias Handler = @Sendable (HTTPRequest) async -> HTTPResponse

    /// The port actually bound (useful with port 0).
    package let port: Int
    private let loop: EventLoop
    private let handler: Handler
    private let logger: Logger

    package init(configuration: Configuration, logger: Logger, handler: @escaping Handler) throws(HTTPServerError) {
        let (fd, port) = try Self.listen(host: configuration.host, port: configuration.port)
        self.port = port
        self.handler = handler
        self.logger = logger
        do {
            loop = try EventLoop(
                listenFD: fd,
                configuration: .init(
                    maxConnections: configuration.maxConnections,
                    limits: .init(
                        maxRequestLineBytes: configuration.maxRequestLineBytes,
                        maxHeaderBytes: configuration.maxHeaderBytes,
                        maxHeaderFields: configuration.maxHeaderFields,
                        maxBodyBytes: configuration.maxBodyBytes
                    ),
                    headerTimeout: configuration.headerTimeout,
                    bodyTimeout: configuration.bodyTimeout,
                    idleTimeout: configuration.idleTimeout,
                    writeTimeout: configuration.writeTimeout,
                    shutdownTimeout: configuration.shutdownTimeout,
                    maxInflightBytes: configuration.maxInflightBytes,
                    budgetGrace: configuration.budgetGrace,
                    budgetWait: configuration.budgetWait,
                    clock: configuration.clock
                ),
                logger: logger,
                statistics: configuration.statistics
            )
        } catch {
            close(fd)
            throw error
        }
    }

    /// True once shutdown has begun; readiness reports it so load balancers stop sending.
    package var isShuttingDown: Bool { loop.isShuttingDown }

    /// Begins a graceful shutdown, as SIGTERM does through the service group.
    package func shutdown() {
        loop.beginShutdown()
    }

    package func run() async throws {
        let (requests, continuation) = AsyncStream.makeStream(of: (RequestTicket, HTTPRequest).self)
        let loop = self.loop
        let thread = LoopThread {
            loop.run { ticket, request in continuation.yield((ticket, request)) }
            continuation.finish()
        }
        thread.start()
        logger.info("http server listening", metadata: ["port": "\(port)"])
        let handler = self.handler
        await withTaskCancellationOrGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await (ticket, request) in requests {
                    group.addTask {
                        let response = await handler(request)
                        loop.complete(ticket, with: response)
                    }
                }
            }
        } onCancelOrGracefulShutdown: {
            loop.beginShutdown()
        }
        logger.info("http server stopped")
    }

    private static func listen(host: String, port: Int) throws(HTTPServerError) -> (Int32, Int) {
        var storage = sockaddr_storage()
        let length: socklen_t
        let family: Int32
        if host.contains(":") {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET6, host, &address.sin6_addr) == 1 else { throw .invalidAddress(host) }
            withUnsafeBytes(of: address) { raw in
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: raw) }
            }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            family = AF_INET6
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw .invalidAddress(host) }
            withUnsafeBytes(of: address) { raw in
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: raw) }
            }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            family = AF_INET
        }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system("socket", errno) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw .system("bind to \(host):\(port)", code)
        }
        guard Glibc.listen(fd, 4096) == 0 else {
            let code = errno
            close(fd)
            throw .system("listen", code)
        }
        var actual = sockaddr_storage()
        var actualLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &actualLength) }
        }
        let boundPort: UInt16 = withUnsafeBytes(of: actual) { raw in
            // sin_port and sin6_port sit at the same offset, right after the family.
            UInt16(bigEndian: raw.load(fromByteOffset: 2, as: UInt16.self))
        }
        return (fd, Int(boundPort))
    }
}
