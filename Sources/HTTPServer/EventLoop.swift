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

    private let configuration: Configuration
    private let logger: Logger
    private let listenFD: Int32
    private let epollFD: Int32
    private let wakeFD: Int32
    private let shared = Mutex(Shared())
    private let shuttingDownFlag = Atomic<Bool>(false)

    // Loop-thread state.
    private var connections: [Int32: Connection] = [:]
    private var nextSerial: UInt64 = 1
    private var shutdownDeadline: UInt64?
    private var listening = true
    private var acceptPausedUntil: UInt64?
    private var nextSweep: UInt64 = 0
    /// A descriptor held in reserve: when accept fails for lack of descriptors, it is closed so one connection can
    /// be accepted, answered 503 and closed, then reopened. Refusing this way empties the backlog instead of
    /// leaving clients hanging in it.
    private var spareFD: Int32 = open("/dev/null", O_RDONLY | O_CLOEXEC)
    private var lastDescriptorWarning: UInt64 = 0
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    private var dateCache = DateHeaderCache()
    /// The in-flight request bytes: what every connection has been charged.
    private var budgetUsed = 0
    /// The part of it that declared bodies hold.
    private var bodiesUsed = 0
    /// The part of that which bodies over `smallBodyBytes` hold.
    private var largeBodiesUsed = 0
    /// Bodies up to this size (GitHub's deliveries: a few KB to about 100 KB) may use the whole budget; larger
    /// ones only three quarters of it, so parked large bodies can never crowd out a delivery.
    static let smallBodyBytes = 256 * 1024
    private var largeBodiesLimit: Int { configuration.maxInflightBytes - configuration.maxInflightBytes / 4 }
    /// Connections not read until budget frees.
    private var budgetWaiters: [Connection] = [] {
        didSet { statistics.budgetWaiting.store(budgetWaiters.count, ordering: .relaxed) }
    }
    private let statistics: HTTPServerStatistics
    /// Set while waiters are being admitted, so budget released by a cut does not re-enter admission.
    private var admitting = false

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
    func run(dispatch: (RequestTicket, HTTPRequest) -> Void) {
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
                    handleCrossThreadWork(now: now2, dispatch: dispatch)
                } else if let connection = connections[fd] {
                    handle(event: event.events, on: connection, now: now2, dispatch: dispatch)
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

    private func handleCrossThreadWork(now: UInt64, dispatch: (RequestTicket, HTTPRequest) -> Void) {
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
            send(response, on: connection, now: now, dispatch: dispatch)
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

    // MARK: - Accepting

    private func acceptConnections(now: UInt64) {
        if let until = acceptPausedUntil, now < until { return }
        acceptPausedUntil = nil
        while listening {
            let fd = kar_accept(listenFD)
            if fd < 0 {
                let error = errno
                if error == EAGAIN || error == EWOULDBLOCK || error == EINTR { return }
                if error == EMFILE || error == ENFILE, spareFD >= 0 {
                    if refuseWithSpareDescriptor(now: now) { continue }
                    return  // nothing was pending
                }
                if error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM {
                    // Out of descriptors: stop accepting briefly instead of spinning on a ready listener.
                    logger.error("accept failed; pausing accepts", metadata: ["errno": "\(error)"])
                    acceptPausedUntil = now + 100_000_000
                    kar_epoll_mod(epollFD, listenFD, 0)
                    return
                }
                continue  // ECONNABORTED and the like concern one connection only
            }
            if connections.count >= configuration.maxConnections, !evictIdleConnection(now: now) {
                rejectAtCapacity(fd)
                continue
            }
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let connection = Connection(
                fd: fd,
                serial: nextSerial,
                limits: configuration.limits,
                now: now,
                deadline: now + configuration.headerTimeout.nanoseconds,
                interest: KAR_EPOLLIN
            )
            nextSerial += 1
            connections[fd] = connection
            kar_epoll_add(epollFD, fd, KAR_EPOLLIN)
        }
    }

    /// Out of descriptors: frees the spare to accept one pending connection, answers it 503 and closes it.
    /// Returns whether a connection was refused (more may be pending).
    private func refuseWithSpareDescriptor(now: UInt64) -> Bool {
        close(spareFD)
        spareFD = -1
        let fd = kar_accept(listenFD)
        if fd >= 0 {
            let response = HTTPResponse.text(503, "server out of descriptors", headers: [("Retry-After", "1")])
            let bytes = response.serialized(
                keepAlive: false,
                headOnly: false,
                version: .http1_1,
                date: dateCache.current()
            )
            _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            close(fd)
            statistics.descriptorRefusals.add(1, ordering: .relaxed)
        }
        spareFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        if now - lastDescriptorWarning >= 1_000_000_000 {
            lastDescriptorWarning = now
            logger.warning(
                "out of descriptors: refusing connections",
                metadata: ["refused_total": "\(statistics.connectionsRefusedForDescriptors)"]
            )
        }
        return fd >= 0
    }

    /// Closes the longest-idle keep-alive connection (or else a silent new one) to make room.
    private func evictIdleConnection(now: UInt64) -> Bool {
        var victim: Connection?
        for connection in connections.values where connection.isIdleKeepAlive {
            if victim == nil || connection.lastActivity < victim!.lastActivity { victim = connection }
        }
        if victim == nil {
            for connection in connections.values
            where connection.isIdleNew && now - connection.lastActivity > 1_000_000_000 {
                if victim == nil || connection.lastActivity < victim!.lastActivity { victim = connection }
            }
        }
        guard let victim else { return false }
        closeConnection(victim)
        return true
    }

    private func rejectAtCapacity(_ fd: Int32) {
        let response = HTTPResponse.text(503, "server at connection capacity", headers: [("Retry-After", "1")])
        let bytes = response.serialized(keepAlive: false, headOnly: false, version: .http1_1, date: dateCache.current())
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        close(fd)
        logger.warning(
            "connection rejected at capacity",
            metadata: ["max_connections": "\(configuration.maxConnections)"]
        )
    }

    // MARK: - Connection events

    private func handle(
        event: UInt32,
        on connection: Connection,
        now: UInt64,
        dispatch: (RequestTicket, HTTPRequest) -> Void
    ) {
        if event & (KAR_EPOLLERR | KAR_EPOLLHUP) != 0, connection.state != .reading || connection.waitingSince != nil {
            // The peer is gone; a pending response has nowhere to go.
            closeConnection(connection)
            return
        }
        if event & KAR_EPOLLOUT != 0, !connection.outbound.isEmpty {
            flush(connection, now: now, dispatch: dispatch)
            if connections[connection.fd] !== connection { return }
        }
        if event & (KAR_EPOLLIN | KAR_EPOLLHUP | KAR_EPOLLERR) != 0 {
            switch connection.state {
            case .reading: readRequests(connection, now: now, dispatch: dispatch)
            case .lingering: drainLingering(connection)
            case .processing, .writing: break
            }
        }
    }

    private func readRequests(_ connection: Connection, now: UInt64, dispatch: (RequestTicket, HTTPRequest) -> Void) {
        var total = 0
        // Parse after every read, so the receive buffer holds one read at most and body bytes go to the body.
        while total < 256 * 1024, connection.state == .reading, connections[connection.fd] === connection {
            if !connection.reserved, let body = connection.parser.declaredBody {
                // The head declared its body's length: the whole body is admitted at once, or waits.
                guard reserveBody(connection, now: now) else {
                    waitForBudget(connection, need: body.length, now: now)
                    return
                }
            }
            let allowance = max(0, connection.charged - connection.received) + totalLimit - budgetUsed
            if allowance <= 0 {
                // Only a connection with bytes to give waits for room; one that has sent nothing more is left be.
                var byte: UInt8 = 0
                let peeked = recv(connection.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
                if peeked <= 0 {
                    let error = errno
                    if peeked < 0, error == EINTR { continue }
                    if peeked < 0, error == EAGAIN || error == EWOULDBLOCK { return }
                    closeConnection(connection)  // the client closed before its request was complete
                    return
                }
                waitForBudget(connection, need: 1, now: now)
                return
            }
            // Until a request's length is known, read in small steps: what is read before the head ends is
            // charged from the share kept for heads, and a body must not take that share.
            let step = connection.reserved ? scratch.count : 2048
            let n = recv(connection.fd, scratch.baseAddress, min(step, allowance), 0)
            if n > 0 {
                connection.parser.append(UnsafeRawBufferPointer(rebasing: scratch[0..<n]))
                connection.received += n
                if connection.received > connection.charged { setCharge(connection, connection.received, now: now) }
                total += n
                connection.lastActivity = now
                drive(connection, now: now, dispatch: dispatch)
                continue
            }
            if n == 0 {
                // The client closed its side. An incomplete request is abandoned; a complete one already
                // buffered is still answered (a half-close after a request is legal).
                drive(connection, now: now, dispatch: dispatch)
                if connections[connection.fd] === connection, connection.state == .reading {
                    closeConnection(connection)
                }
                return
            }
            let error = errno
            if error == EAGAIN || error == EWOULDBLOCK { return }
            if error == EINTR { continue }
            closeConnection(connection)
            return
        }
    }

    // MARK: - The in-flight budget
    //
    // Every request byte received and not yet answered is charged to one budget shared by all connections.
    // A request whose head declares a Content-Length is charged its whole body at once when the head is complete,
    // or waits until that much is free, so a body never grows past what was admitted; bodies together stay within
    // `maxInflightBytes`. Heads, chunked bodies and pipelined bytes are charged as they arrive, from an eighth more,
    // and read only while it is free (a head is read 2 KiB at a time, so it takes little before its length is
    // known). Bodies over 256 KiB may take only three quarters of the budget together: the last quarter is for
    // bodies the size of deliveries. Waiting connections are admitted smallest declared body first, then oldest;
    // to admit one, the request that has held budget longest is cut with 503 once it has held it longer than the
    // grace.

    /// Bodies are admitted up to the budget; heads (and bytes of unknown length) have an eighth more of their
    /// own, so a new connection's head is read, and its declared length known, even while bodies hold the rest.
    private var totalLimit: Int { configuration.maxInflightBytes + configuration.maxInflightBytes / 8 }

    /// Charges a declared body in full; false, charging nothing, when bodies or the total have no room for it.
    private func reserveBody(_ connection: Connection, now: UInt64) -> Bool {
        guard let (length, remaining) = connection.parser.declaredBody else { return true }
        let charge = connection.received - (length - remaining) + length  // the head, then the whole body
        let isLarge = length > Self.smallBodyBytes
        guard bodiesUsed + length <= configuration.maxInflightBytes,
            !isLarge || largeBodiesUsed + length <= largeBodiesLimit,
            budgetUsed + charge - connection.charged <= totalLimit
        else { return false }
        bodiesUsed += length
        if isLarge { largeBodiesUsed += length }
        connection.bodyReserved = length
        connection.reserved = true
        setCharge(connection, max(charge, connection.charged), now: now)
        return true
    }

    /// Sets what `connection` holds of the budget; a request starts its age when it first holds bytes.
    private func setCharge(_ connection: Connection, _ bytes: Int, now: UInt64) {
        let released = bytes < connection.charged
        if connection.charged == 0, bytes > 0 { connection.chargedSince = now }
        budgetUsed += bytes - connection.charged
        connection.charged = bytes
        statistics.inflightBytes.store(budgetUsed, ordering: .relaxed)
        if released, !admitting, !budgetWaiters.isEmpty { admitWaiters(now: now) }
    }

    /// Gives the budget back once a request is answered: only bytes already read past it (pipelining) stay charged.
    private func releaseRequest(_ connection: Connection, now: UInt64) {
        connection.reserved = false
        bodiesUsed -= connection.bodyReserved
        if connection.bodyReserved > Self.smallBodyBytes { largeBodiesUsed -= connection.bodyReserved }
        connection.bodyReserved = 0
        connection.received = connection.parser.bufferedByteCount
        setCharge(connection, 0, now: now)
        setCharge(connection, connection.received, now: now)
    }

    /// Cuts the request that has held budget longest, if it has held it for longer than the grace and is still
    /// being received (a request in its handler is never cut).
    ///
    /// This is what keeps deliveries from starving: GitHub sends a delivery whole, so it holds budget for
    /// milliseconds, while a client that parks a body ages past the grace and is the first to go.
    private func makeRoom(for connection: Connection, now: UInt64) -> Bool {
        let grace = configuration.budgetGrace.nanoseconds
        var victim: Connection?
        for candidate in connections.values
        where candidate !== connection && candidate.state == .reading && candidate.charged > 0
            && now - candidate.chargedSince >= grace
        {
            if victim == nil || candidate.chargedSince < victim!.chargedSince { victim = candidate }
        }
        guard let victim else { return false }
        logger.debug(
            "request cut to free the in-flight budget",
            metadata: ["held_bytes": "\(victim.charged)", "held_ms": "\((now - victim.chargedSince) / 1_000_000)"]
        )
        statistics.budgetCuts.add(1, ordering: .relaxed)
        reject(victim, status: 503, "server busy: request bytes in flight at their limit", now: now)
        return true
    }

    /// Stops reading `connection` until `need` bytes of budget can be given to it.
    private func waitForBudget(_ connection: Connection, need: Int, now: UInt64) {
        setInterest(connection, 0)
        connection.budgetNeed = need
        if connection.waitingSince == nil {
            connection.waitingSince = now
            budgetWaiters.append(connection)
        }
        if !admitting { admitWaiters(now: now) }
    }

    /// Admits waiting connections, smallest need first, then oldest; cuts aged requests to make room for them.
    private func admitWaiters(now: UInt64) {
        admitting = true
        defer { admitting = false }
        budgetWaiters.removeAll { connections[$0.fd] !== $0 || $0.state != .reading || $0.waitingSince == nil }
        budgetWaiters.sort { ($0.budgetNeed, $0.waitingSince!) < ($1.budgetNeed, $1.waitingSince!) }
        for waiter in budgetWaiters {  // a copy: cutting a waiter removes it from the list
            guard connections[waiter.fd] === waiter, waiter.state == .reading, waiter.waitingSince != nil else {
                continue
            }
            let isBody = waiter.parser.declaredBody != nil && !waiter.reserved
            func fits() -> Bool { isBody ? reserveBody(waiter, now: now) : budgetUsed < totalLimit }
            var admitted = fits()
            while !admitted, makeRoom(for: waiter, now: now) { admitted = fits() }
            guard admitted else { break }  // a larger need cannot fit either
            waiter.waitingSince = nil
            setInterest(waiter, KAR_EPOLLIN)
        }
        budgetWaiters.removeAll { $0.waitingSince == nil }
    }

    /// Answers waiters that could not be admitted within the wait bound with 503.
    private func expireWaiters(now: UInt64) {
        admitWaiters(now: now)
        let bound = configuration.budgetWait.nanoseconds
        for waiter in budgetWaiters where now - (waiter.waitingSince ?? now) >= bound {
            statistics.budgetRefusals.add(1, ordering: .relaxed)
            reject(waiter, status: 503, "server busy: request bytes in flight at their limit", now: now)
        }
    }

    /// Answers `status` with `Retry-After: 1` and closes, releasing the connection's request bytes at once.
    private func reject(_ connection: Connection, status: Int, _ reason: String, now: UInt64) {
        if connection.waitingSince != nil {
            connection.waitingSince = nil
            budgetWaiters.removeAll { $0 === connection }
        }
        connection.keepAlive = false
        connection.state = .processing
        connection.parser.discard()
        send(.text(status, reason, headers: [("Retry-After", "1")]), on: connection, now: now, dispatch: { _, _ in })
    }

    /// Runs the parser over what is buffered until it needs bytes, hands off a request, or fails.
    private func drive(_ connection: Connection, now: UInt64, dispatch: (RequestTicket, HTTPRequest) -> Void) {
        while connection.state == .reading {
            switch connection.parser.next() {
            case .needMoreData:
                updatePhase(connection, now: now)
                return
            case .continueExpected:
                updatePhase(connection, now: now)
                connection.outbound.append(contentsOf: continueResponse)
                flushPartial(connection)
            case .request(var request):
                request.connectionID = connection.serial
                connection.state = .processing
                connection.phase = .idle
                connection.isHeadRequest = request.method == "HEAD"
                connection.keepAlive = connection.keepAlive && wantsKeepAlive(request)
                setInterest(connection, 0)
                dispatch(RequestTicket(fd: connection.fd, serial: connection.serial), request)
                return
            case .failure(let error):
                logger.debug("rejected request", metadata: ["status": "\(error.status)", "reason": "\(error)"])
                connection.keepAlive = false
                connection.state = .processing
                connection.parser.discard()
                send(.text(error.status, error.description), on: connection, now: now, dispatch: dispatch)
                return
            }
        }
    }

    private func updatePhase(_ connection: Connection, now: UInt64) {
        let phase = connection.parser.phase
        guard phase != connection.phase else { return }
        switch phase {
        case .idle:
            break
        case .head:
            // The first request's header deadline counts from accept; later ones from their first byte.
            if connection.requestsServed > 0 { connection.deadline = now + configuration.headerTimeout.nanoseconds }
        case .body:
            connection.deadline = now + configuration.bodyTimeout.nanoseconds
        }
        connection.phase = phase
    }

    private func wantsKeepAlive(_ request: HTTPRequest) -> Bool {
        let tokens = request.headers.values("Connection").flatMap { $0.split(separator: ",") }.map { $0.trimmingOWS() }
        // HTTP/1.0's optional keep-alive mechanism is not honoured (RFC 9112 §9.3 leaves it to the server;
        // h11 does the same): a 1.0 request gets its answer and the connection closes.
        if request.version == .http1_0 { return false }
        return !tokens.contains { $0.caseInsensitiveEquals("close") }
    }

    // MARK: - Writing

    private func send(
        _ response: HTTPResponse,
        on connection: Connection,
        now: UInt64,
        dispatch: (RequestTicket, HTTPRequest) -> Void
    ) {
        let keepAlive = connection.keepAlive && shutdownDeadline == nil
        connection.closeAfterWrite = !keepAlive
        // The request is answered: its bytes are no longer held, only what was read past it (pipelining).
        if !keepAlive { connection.parser.discard() }
        releaseRequest(connection, now: now)
        connection.outbound.append(
            contentsOf: response.serialized(
                keepAlive: keepAlive,
                headOnly: connection.isHeadRequest,
                version: .http1_1,
                date: dateCache.current()
            )
        )
        connection.state = .writing
        connection.deadline = now + configuration.writeTimeout.nanoseconds
        flush(connection, now: now, dispatch: dispatch)
    }

    /// Writes what it can without blocking; returns whether everything was written.
    @discardableResult
    private func flushPartial(_ connection: Connection) -> Bool {
        while connection.outboundOffset < connection.outbound.count {
            let n = connection.outbound.withUnsafeBytes { bytes in
                Glibc.send(
                    connection.fd,
                    bytes.baseAddress! + connection.outboundOffset,
                    bytes.count - connection.outboundOffset,
                    Int32(MSG_NOSIGNAL)
                )
            }
            if n >= 0 {
                connection.outboundOffset += n
                continue
            }
            let error = errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK {
                setInterest(connection, connection.interest | KAR_EPOLLOUT)
                return false
            }
            closeConnection(connection)
            return false
        }
        connection.outbound.removeAll()
        connection.outboundOffset = 0
        if connection.interest & KAR_EPOLLOUT != 0 {
            setInterest(connection, connection.interest & ~KAR_EPOLLOUT)
        }
        return true
    }

    private func flush(_ connection: Connection, now: UInt64, dispatch: (RequestTicket, HTTPRequest) -> Void) {
        guard flushPartial(connection), connections[connection.fd] === connection else { return }
        guard connection.state == .writing else { return }  // an interim 100 Continue went out
        if connection.closeAfterWrite {
            startLingering(connection, now: now)
            return
        }
        connection.state = .reading
        connection.phase = .idle
        connection.requestsServed += 1
        connection.lastActivity = now
        connection.deadline = now + configuration.idleTimeout.nanoseconds
        connection.parser.shrinkIfIdle()
        setInterest(connection, KAR_EPOLLIN)
        drive(connection, now: now, dispatch: dispatch)  // a pipelined request may already be buffered
    }

    private func startLingering(_ connection: Connection, now: UInt64) {
        connection.state = .lingering
        connection.deadline = now + configuration.lingerTimeout.nanoseconds
        shutdown(connection.fd, Int32(SHUT_WR))
        setInterest(connection, KAR_EPOLLIN)
    }

    private func drainLingering(_ connection: Connection) {
        while true {
            let n = recv(connection.fd, scratch.baseAddress, scratch.count, 0)
            if n > 0 { continue }
            if n < 0, errno == EINTR { continue }
            if n < 0, errno == EAGAIN || errno == EWOULDBLOCK { return }
            closeConnection(connection)
            return
        }
    }

    // MARK: - Timeouts

    private func sweep(now: UInt64) {
        if let until = acceptPausedUntil, now >= until, listening {
            acceptPausedUntil = nil
            kar_epoll_mod(epollFD, listenFD, KAR_EPOLLIN)
        }
        if !budgetWaiters.isEmpty { expireWaiters(now: now) }
        var expired: [Connection] = []
        for connection in connections.values
        where connection.state != .processing && connection.waitingSince == nil && now >= connection.deadline {
            expired.append(connection)
        }
        for connection in expired {
            switch connection.state {
            case .reading where connection.phase != .idle || connection.parser.bufferedByteCount > 0:
                logger.debug("request timed out", metadata: ["phase": "\(connection.phase)"])
                connection.keepAlive = false
                connection.state = .processing
                connection.parser.discard()
                send(.text(408, "request timeout"), on: connection, now: now, dispatch: { _, _ in })
            default:
                closeConnection(connection)
            }
        }
    }

    // MARK: - Plumbing

    private func closeConnection(_ connection: Connection) {
        guard connections[connection.fd] === connection else { return }
        connections[connection.fd] = nil
        kar_epoll_del(epollFD, connection.fd)
        close(connection.fd)
        if connection.waitingSince != nil {
            connection.waitingSince = nil
            budgetWaiters.removeAll { $0 === connection }
        }
        connection.parser.discard()
        releaseRequest(connection, now: configuration.clock())
    }

    private func setInterest(_ connection: Connection, _ events: UInt32) {
        guard connection.interest != events else { return }
        connection.interest = events
        kar_epoll_mod(epollFD, connection.fd, events)
    }

    /// The number of open connections; for tests and metrics, read on the loop thread only.
    var connectionCount: Int { connections.count }
}

private let continueResponse = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

/// Nanoseconds on the monotonic clock.
package func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Formats the `Date` header once per second.
struct DateHeaderCache {
    private var second: Int = -1
    private var value = ""

    mutating func current() -> String {
        let now = time(nil)
        guard now != second else { return value }
        second = now
        value = Timestamps.httpDate(Int64(now))
        return value
    }
}
