import CLinuxShims

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// New connections: accepting them, the connection cap, and running out of descriptors.
extension EventLoop {
    func acceptConnections(now: UInt64) {
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
            answerAndClose(fd, .text(503, "server out of descriptors", headers: [("Retry-After", "1")]))
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
        answerAndClose(fd, .text(503, "server at connection capacity", headers: [("Retry-After", "1")]))
        logger.warning(
            "connection rejected at capacity",
            metadata: ["max_connections": "\(configuration.maxConnections)"]
        )
    }

    /// Answers a socket that never becomes a connection: one write, whatever it manages, then close.
    private func answerAndClose(_ fd: Int32, _ response: HTTPResponse) {
        let bytes = response.serialized(keepAlive: false, headOnly: false, version: .http1_1, date: dateCache.current())
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        close(fd)
    }
}
