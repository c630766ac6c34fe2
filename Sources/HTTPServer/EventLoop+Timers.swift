import CLinuxShims

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Deadlines: every 100 ms the loop resumes paused accepts, expires budget waiters and acts on connections whose
/// deadline (header, body, idle, write, linger) has passed.
extension EventLoop {
    func sweep(now: UInt64) {
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
                refuse(connection, .text(408, "request timeout"), now: now)
                advance(connection, now: now)
            default:
                closeConnection(connection)
            }
        }
    }
}

/// Nanoseconds on the monotonic clock.
package func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
