/// One client connection, owned by the event loop's thread and touched by nothing else.
///
/// An idle connection costs this object and its file descriptor: no thread, no buffer (the parser
/// releases its buffer between requests).
final class Connection {
    enum State {
        /// Reading a request; the parser's phase says which part.
        case reading
        /// A complete request is with its handler; nothing is read meanwhile.
        case processing
        /// A response is being written.
        case writing
        /// The response was sent with `Connection: close` and our side is shut down; input is drained
        /// until the client closes, so a final error response is not lost to a reset.
        case lingering
    }

    let fd: Int32
    /// Distinguishes this connection from a later one that reuses the descriptor number.
    let serial: UInt64
    var parser: RequestParser
    var state = State.reading
    /// Set when the loop closes the descriptor; the object may still be referenced (a waiter list, a sweep).
    var isClosed = false
    var phase = RequestParser.Phase.idle
    var deadline: UInt64
    var requestsServed = 0
    var lastActivity: UInt64
    var keepAlive = true
    var closeAfterWrite = false
    var isHeadRequest = false
    var outbound: [UInt8] = []
    var outboundOffset = 0
    /// The epoll events currently registered.
    var interest: UInt32
    /// Request bytes this connection holds of the loop's in-flight budget.
    var charged = 0
    /// Bytes received since the last answer (the current request and any read past it).
    var received = 0
    /// Whether the current request's declared length has been charged in full.
    var reserved = false
    /// The declared body length charged to the bodies' share.
    var bodyReserved = 0
    /// What a waiting connection needs of the budget before it is read again.
    var budgetNeed = 0
    /// When it began holding them (the age by which the oldest request is cut first).
    var chargedSince: UInt64 = 0
    /// Set while the connection is not read because the budget is spent.
    var waitingSince: UInt64?

    init(fd: Int32, serial: UInt64, limits: RequestParser.Limits, now: UInt64, deadline: UInt64, interest: UInt32) {
        self.fd = fd
        self.serial = serial
        self.parser = RequestParser(limits: limits)
        self.deadline = deadline
        self.lastActivity = now
        self.interest = interest
    }

    /// Keep-alive connections waiting for their next request; the first to close when the cap is reached.
    var isIdleKeepAlive: Bool {
        state == .reading && phase == .idle && requestsServed > 0 && outbound.isEmpty
    }

    /// Connections that have sent nothing yet.
    var isIdleNew: Bool {
        state == .reading && phase == .idle && requestsServed == 0 && parser.bufferedByteCount == 0
    }
}
