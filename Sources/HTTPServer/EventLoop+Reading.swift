import CLinuxShims
import Support

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Receiving and parsing requests.
extension EventLoop {
    /// Reads what the in-flight budget allows, parsing after every read, until the socket is drained, a request is
    /// complete or the connection must wait for budget.
    func readRequests(_ connection: Connection, now: UInt64) {
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
                advance(connection, now: now)
                continue
            }
            if n == 0 {
                // The client closed its side. An incomplete request is abandoned; a complete one already
                // buffered is still answered (a half-close after a request is legal).
                advance(connection, now: now)
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

    /// Takes the parser's next step over what is buffered; false once it needs more bytes or a request went to
    /// its handler, true when the connection changed state (an error answer) or an interim 100 went out.
    func parseNext(_ connection: Connection, now: UInt64) -> Bool {
        switch connection.parser.next() {
        case .needMoreData:
            updatePhase(connection, now: now)
            return false
        case .continueExpected:
            updatePhase(connection, now: now)
            connection.outbound.append(contentsOf: continueResponse)
            flushPartial(connection)
            return true
        case .request(var request):
            request.connectionID = connection.serial
            connection.state = .processing
            connection.phase = .idle
            connection.isHeadRequest = request.method == "HEAD"
            connection.keepAlive = connection.keepAlive && wantsKeepAlive(request)
            setInterest(connection, 0)
            dispatch(RequestTicket(fd: connection.fd, serial: connection.serial), request)
            return false
        case .failure(let error):
            logger.debug("rejected request", metadata: ["status": "\(error.status)", "reason": "\(error)"])
            refuse(connection, .text(error.status, error.description), now: now)
            return true
        }
    }

    /// Moves the connection's deadline when the parser enters a request's head or body.
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
}

private let continueResponse = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
