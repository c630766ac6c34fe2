import CLinuxShims
import Logging
import Support
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Identifies a request handed to a handler, so its response finds the right connection.
struct RequestTicket: Sendable {
    var fd: Int32
    var serial: UInt64
}

/// A single-threaded epoll loop that owns the listening socket and every connection.
///
/// Only the loop's own thread reads or writes connection state. Other threads talk to it through
/// `complete(_:with:)` and `beginShutdown()`, which queue work under a mutex and wake the loop through an
/// eventfd. That is the whole of its cross-thread surface, hence `@unchecked Sendable`.
///
/// An event does its I/O, then `advance(_:now:)` decides what the connection does next. The parts:
/// `+Accepting` (new connections, the connection cap, running out of descriptors), `+Reading` (receiving and
/// parsing), `+Budget` (the request bytes in flight over all connections), `+Writing` (responses, lingering
/// close) and `+Timers` (deadlines).
final class EventLoop: @unchecked Sendable {
    struct Configuration: Sendable {
        var maxConnections: Int
        var limits: RequestParser.Limits
        var headerTimeout: Duration
        var bodyTimeout: Duration
        var idleTimeout: Duration
        var writeTimeout: Duration
        var shutdownTimeout: Duration
        /// How long a closing connection may drain input before it is closed hard.
        var lingerTimeout: Duration = .seconds(2)
        /// Declared request bodies held at once over every connection; heads get an eighth more.
        var maxInflightBytes: Int = 32 * 1024 * 1024
        /// A request holding budget for longer than this may be cut (503) to make room for another.
        var budgetGrace: Duration = .seconds(1)
        /// A connection waiting this long for budget, with nothing to cut, is answered 503.
        var budgetWait: Duration = .seconds(2)
        /// The loop's clock (monotonic nanoseconds); tests pass one they advance by hand.
        var clock: @Sendable () -> UInt64 = monotonicNanoseconds
    }

    private struct Shared {
        var completions: [(RequestTicket, HTTPResponse)] = []
        var shutdownRequested = false
    }

    let configuration: Configuration
    let logger: Logger
    let listenFD: Int32
    let epollFD: Int32
    private let wakeFD: Int32
    private let shared = Mutex(Shared())
    private let shuttingDownFlag = Atomic<Bool>(false)
    let statistics: HTTPServerStatistics

    // Loop-thread state.
    var connections: [Int32: Connection] = [:]
    /// Where complete requests go; set by `run`.
    var dispatch: (RequestTicket, HTTPRequest) -> Void = { _, _ in }
    var nextSerial: UInt64 = 1
    var shutdownDeadline: UInt64?
    var listening = true
    var acceptPausedUntil: UInt64?
    var nextSweep: UInt64 = 0
    /// A descriptor held in reserve: when accept fails for lack of descriptors, it is closed so one connection can
    /// be accepted, answered 503 and closed, then reopened. Refusing this way empties the backlog instead of
    /// leaving clients hanging in it.
    var spareFD: Int32 = open("/dev/null", O_RDONLY | O_CLOEXEC)
    var lastDescriptorWarning: UInt64 = 0
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    var dateCache = DateHeaderCache()
    /// The in-flight request bytes: what every connection has been charged.
    var budgetUsed = 0
    /// The part of it that declared bodies hold.
    var bodiesUsed = 0
    /// The part of that which bodies over `smallBodyBytes` hold.
    var largeBodiesUsed = 0
    /// Connections not read until budget frees.
    var budgetWaiters: [Connection] = [] {
        didSet { statistics.budgetWaiting.store(budgetWaiters.count, ordering: .relaxed) }
    }
    /// Set while waiters are being admitted, so budget released by a cut does not re-enter admission.
    var admitting = false

    init(
        listenFD: Int32,
        configuration: Configuration,
        logger: Logger,
        statistics: HTTPServerStatistics = HTTPServerStatistics()
    ) throws(HTTPServerError) {
        self.listenFD = listenFD
        self.configuration = configuration
        self.logger = logger
        self.statistics = statistics
        epollFD = kar_epoll_create()
        guard epollFD >= 0 else { throw HTTPServerError.system("epoll_create1", errno) }
        wakeFD = kar_eventfd()
        guard wakeFD >= 0 else { throw HTTPServerError.system("eventfd", errno) }
        kar_epoll_add(epollFD, listenFD, KAR_EPOLLIN)
        kar_epoll_add(epollFD, wakeFD, KAR_EPOLLIN)
    }

    deinit {
        scratch.deallocate()
        if spareFD >= 0 { close(spareFD) }
        close(epollFD)
        close(wakeFD)
    }

    var isShuttingDown: Bool { shuttingDownFlag.load(ordering: .relaxed) }

    // MARK: - Cross-thread entry points

    /// Hands a handler's response back to the loop. Drops it if the connection has gone.
    func complete(_ ticket: RequestTicket, with response: HTTPResponse) {
        shared.withLock { $0.completions.append((ticket, response)) }
        wake()
    }

    /// Stops accepting, closes idle connections, lets in-flight requests finish within the shutdown bound.
    func beginShutdown() {
        shuttingDownFlag.store(true, ordering: .relaxed)
        shared.withLock { $0.shutdownRequested = true }
        wake()
    }

    private func wake() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(wakeFD, $0.baseAddress, 8) }
    }

    // MARK: - The loop

    /// Runs until shutdown completes; `dispatch` receives each complete request on the loop thread.
    func run(dispatch: @escaping (RequestTicket, HTTPRequest) -> Void) {
        self.dispatch = dispatch
        let maxEvents = 256
        var events = [kar_event](repeating: kar_event(), count: maxEvents)
        while true {
            let now = configuration.clock()
            if let deadline = shutdownDeadline, connections.isEmpty || now >= deadline {
                break
            }
            let timeout: Int32
            if connections.isEmpty && shutdownDeadline == nil && acceptPausedUntil == nil {
                timeout = -1
            } else {
                timeout = 100
            }
            let count = kar_epoll_wait(epollFD, &events, Int32(maxEvents), timeout)
            if count < 0 {
                if errno == EINTR { continue }
                logger.critical("epoll_wait failed", metadata: ["errno": "\(errno)"])
                break
            }
            let now2 = configuration.clock()
            for index in 0..<Int(count) {
                let event = events[index]
                let fd = event.fd
                if fd == listenFD {
                    acceptConnections(now: now2)
                } else if fd == wakeFD {
                    drainWake()
                    handleCrossThreadWork(now: now2)
                } else if let connection = connections[fd] {
                    handle(event: event.events, on: connection, now: now2)
                }
            }
            if now2 >= nextSweep {
                sweep(now: now2)
                nextSweep = now2 + 100_000_000
            }
        }
        for connection in Array(connections.values) {
            closeConnection(connection)
        }
        if listening {
            close(listenFD)
            listening = false
        }
    }

    private func drainWake() {
        var value: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &value) { read(wakeFD, $0.baseAddress, 8) }
    }

    private func handleCrossThreadWork(now: UInt64) {
        let (completions, shutdown) = shared.withLock { state -> ([(RequestTicket, HTTPResponse)], Bool) in
            let taken = state.completions
            state.completions.removeAll(keepingCapacity: true)
            return (taken, state.shutdownRequested)
        }
        if shutdown, shutdownDeadline == nil {
            startShutdown(now: now)
        }
        for (ticket, response) in completions {
            guard let connection = connections[ticket.fd], connection.serial == ticket.serial,
                connection.state == .processing
            else { continue }
            queue(response, on: connection, now: now)
            advance(connection, now: now)
        }
    }

    private func startShutdown(now: UInt64) {
        shutdownDeadline = now + configuration.shutdownTimeout.nanoseconds
        if listening {
            kar_epoll_del(epollFD, listenFD)
            close(listenFD)
            listening = false
        }
        for connection in Array(connections.values) {
            connection.keepAlive = false
            if connection.state == .reading && connection.phase == .idle && connection.parser.bufferedByteCount == 0 {
                closeConnection(connection)
            }
        }
        logger.info("http server draining", metadata: ["connections": "\(connections.count)"])
    }

    // MARK: - Connection events

    /// Does the I/O an epoll event on `connection` calls for, then moves the connection on.
    private func handle(event: UInt32, on connection: Connection, now: UInt64) {
        if event & (KAR_EPOLLERR | KAR_EPOLLHUP) != 0, connection.state != .reading || connection.waitingSince != nil {
            // The peer is gone; a pending response has nowhere to go.
            closeConnection(connection)
            return
        }
        if event & KAR_EPOLLOUT != 0, !connection.outbound.isEmpty {
            flushPartial(connection)
            advance(connection, now: now)
            if connections[connection.fd] !== connection { return }
        }
        if event & (KAR_EPOLLIN | KAR_EPOLLHUP | KAR_EPOLLERR) != 0 {
            switch connection.state {
            case .reading: readRequests(connection, now: now)
            case .lingering: drainLingering(connection)
            case .processing, .writing: break
            }
        }
    }

    /// Moves `connection` on after anything happened to it (bytes read, a response queued or written): the one
    /// place that decides what a connection does next.
    ///
    /// - reading: parse what is buffered; a complete request goes to `dispatch`, a malformed one is answered.
    /// - writing: once the response is out, linger (the connection closes) or read the next request, which may
    ///   already be buffered (pipelining).
    /// - processing and lingering: nothing until the handler answers or the client closes.
    func advance(_ connection: Connection, now: UInt64) {
        while !connection.isClosed {
            switch connection.state {
            case .reading:
                guard parseNext(connection, now: now) else { return }
            case .writing:
                guard connection.outbound.isEmpty else { return }  // the rest goes when the socket is writable
                if connection.closeAfterWrite {
                    startLingering(connection, now: now)
                    return
                }
                awaitNextRequest(connection, now: now)
            case .processing, .lingering:
                return
            }
        }
    }

    // MARK: - Plumbing

    func closeConnection(_ connection: Connection) {
        guard connections[connection.fd] === connection else { return }
        connections[connection.fd] = nil
        connection.isClosed = true
        kar_epoll_del(epollFD, connection.fd)
        close(connection.fd)
        if connection.waitingSince != nil {
            connection.waitingSince = nil
            budgetWaiters.removeAll { $0 === connection }
        }
        connection.parser.discard()
        releaseRequest(connection, now: configuration.clock())
    }

    func setInterest(_ connection: Connection, _ events: UInt32) {
        guard connection.interest != events else { return }
        connection.interest = events
        kar_epoll_mod(epollFD, connection.fd, events)
    }

    /// The number of open connections; for tests and metrics, read on the loop thread only.
    var connectionCount: Int { connections.count }
}
