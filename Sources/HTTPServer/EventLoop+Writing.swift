import CLinuxShims
import Support

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Responses: queuing them, writing without blocking, and closing after the last one.
extension EventLoop {
    /// Queues `response` on `connection` and writes what the socket takes now; `advance` decides what follows once
    /// it is all out.
    func queue(_ response: HTTPResponse, on connection: Connection, now: UInt64) {
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
        flushPartial(connection)
    }

    /// Answers with an error and closes: whatever is buffered is dropped and nothing more is read.
    func refuse(_ connection: Connection, _ response: HTTPResponse, now: UInt64) {
        connection.keepAlive = false
        connection.state = .processing
        connection.parser.discard()
        queue(response, on: connection, now: now)
    }

    /// Writes what it can without blocking; returns whether everything was written.
    @discardableResult
    func flushPartial(_ connection: Connection) -> Bool {
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

    /// A keep-alive response is out: the connection reads again, with the idle deadline until a request begins.
    func awaitNextRequest(_ connection: Connection, now: UInt64) {
        connection.state = .reading
        connection.phase = .idle
        connection.requestsServed += 1
        connection.lastActivity = now
        connection.deadline = now + configuration.idleTimeout.nanoseconds
        connection.parser.shrinkIfIdle()
        setInterest(connection, KAR_EPOLLIN)
    }

    /// The last response is out: our side is shut down and input drained until the client closes or the linger
    /// deadline passes, so the response is not lost to a reset.
    func startLingering(_ connection: Connection, now: UInt64) {
        connection.state = .lingering
        connection.deadline = now + configuration.lingerTimeout.nanoseconds
        shutdown(connection.fd, Int32(SHUT_WR))
        setInterest(connection, KAR_EPOLLIN)
    }

    func drainLingering(_ connection: Connection) {
        while true {
            let n = recv(connection.fd, scratch.baseAddress, scratch.count, 0)
            if n > 0 { continue }
            if n < 0, errno == EINTR { continue }
            if n < 0, errno == EAGAIN || errno == EWOULDBLOCK { return }
            closeConnection(connection)
            return
        }
    }
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
