import Synchronization
import Testing

@testable import HTTPServer
@testable import TestSupport

/// The server over real loopback sockets.
@Suite struct HTTPServerTests {
    @Test func servesSeveralRequestsOnOneKeepAliveConnection() async throws {
        try await withServer { server in
            let statuses = try await client(server.port) { connection in
                try (0..<5).map { i in try connection.request("GET", "/n\(i)").text }
            }
            #expect(statuses == (0..<5).map { "GET /n\($0) 0\n" })
        }
    }

    @Test func answersPipelinedRequestsInOrder() async throws {
        try await withServer { server in
            let bodies = try await client(server.port) { connection in
                connection.send(
                    "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                        + "GET /c HTTP/1.1\r\nHost: x\r\n\r\n"
                )
                return try (0..<3).map { _ in try connection.readResponse().text }
            }
            #expect(bodies == ["GET /a 0\n", "POST /b 3\n", "GET /c 0\n"])
        }
    }

    @Test func closesAfterConnectionClose() async throws {
        try await withServer { server in
            let raw = try await client(server.port) { connection in
                connection.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return String(decoding: try connection.readUntilClose(), as: UTF8.self)
            }
            #expect(raw.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(raw.contains("Connection: close\r\n"))
            #expect(raw.hasSuffix("GET / 0\n"))
        }
    }

    @Test func closesHTTP10ConnectionsAfterTheAnswer() async throws {
        try await withServer { server in
            for request in [
                "GET / HTTP/1.0\r\n\r\n", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
            ] {
                let raw = try await client(server.port) { connection in
                    connection.send(request)
                    return String(decoding: try connection.readUntilClose(), as: UTF8.self)
                }
                #expect(raw.hasPrefix("HTTP/1.1 200 OK\r\n") && raw.contains("Connection: close\r\n"))
                #expect(raw.hasSuffix("GET / 0\n"))  // one answer, then the connection closes
            }
        }
    }

    @Test func readsChunkedBodies() async throws {
        try await withServer { server in
            let text = try await client(server.port) { connection in
                connection.send("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n")
                connection.send("3\r\nefg\r\n0\r\n\r\n")
                return try connection.readResponse().text
            }
            #expect(text == "POST /c 7\n")
        }
    }

    @Test func rejectsOversizedBodyBeforeItIsSent() async throws {
        try await withServer(.make(maxBodyBytes: 1000)) { server in
            let raw = try await client(server.port) { connection in
                // Only the head goes out: the answer must not wait for 2,000 bytes that never come.
                connection.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n")
                return String(decoding: try connection.readUntilClose(), as: UTF8.self)
            }
            #expect(raw.hasPrefix("HTTP/1.1 413 Content Too Large\r\n"))
            #expect(raw.contains("Connection: close\r\n"))
        }
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "400 Bad Request"),
        ("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", "400 Bad Request"),
        ("GET / HTTP/3.0\r\nHost: x\r\n\r\n", "505 HTTP Version Not Supported"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: br\r\n\r\n", "501 Not Implemented"),
        ("GET /\(String(repeating: "a", count: 9000)) HTTP/1.1\r\nHost: x\r\n\r\n", "414 URI Too Long"),
        (
            "GET / HTTP/1.1\r\nHost: x\r\n" + (0..<101).map { "X-\($0): v\r\n" }.joined() + "\r\n",
            "431 Request Header Fields Too Large"
        ),
    ])
    func answersProtocolErrorsAndCloses(request: String, statusLine: String) async throws {
        try await withServer { server in
            let raw = try await client(server.port) { connection in
                connection.send(request)
                return String(decoding: try connection.readUntilClose(), as: UTF8.self)
            }
            #expect(raw.hasPrefix("HTTP/1.1 \(statusLine)\r\n"))
            #expect(raw.contains("Connection: close\r\n"))
        }
    }

    @Test func sendsContinueBeforeReadingAnExpectedBody() async throws {
        try await withServer { server in
            let (interim, final) = try await client(server.port) { connection in
                connection.send("POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
                let interim = connection.readExactly(25)
                connection.send("body")
                return (String(decoding: interim, as: UTF8.self), try connection.readResponse().text)
            }
            #expect(interim == "HTTP/1.1 100 Continue\r\n\r\n")
            #expect(final == "POST /e 4\n")
        }
    }

    @Test func answersHeadWithoutBody() async throws {
        try await withServer { server in
            let response = try await client(server.port) { connection in try connection.request("HEAD", "/h") }
            #expect(response.status == 200)
            #expect(response.header("Content-Length") == "10")  // "HEAD /h 0\n", as GET would send
            #expect(response.body.isEmpty)
        }
    }

    @Test func cutsSlowHeadersWith408AtTheDeadline() async throws {
        try await withServer(.make(headerTimeout: .milliseconds(400))) { server in
            let (raw, elapsed) = try await client(server.port) { connection in
                let start = ContinuousClock.now
                connection.send("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                connection.send("a")  // still trickling: the deadline counts from accept, not from the last byte
                let raw = String(decoding: try connection.readUntilClose(), as: UTF8.self)
                return (raw, ContinuousClock.now - start)
            }
            #expect(raw.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
            #expect(elapsed >= .milliseconds(350) && elapsed < .seconds(3))
        }
    }

    @Test func closesSilentConnectionsAtTheHeaderDeadline() async throws {
        try await withServer(.make(headerTimeout: .milliseconds(300))) { server in
            let raw = try await client(server.port) { connection in try connection.readUntilClose() }
            #expect(raw.isEmpty)
        }
    }

    @Test func closesIdleKeepAliveConnections() async throws {
        try await withServer(.make(idleTimeout: .milliseconds(300))) { server in
            let (first, rest) = try await client(server.port) { connection in
                (try connection.request("GET", "/").status, try connection.readUntilClose())
            }
            #expect(first == 200)
            #expect(rest.isEmpty)
        }
    }

    @Test func cutsSlowBodiesWith408() async throws {
        try await withServer(.make(bodyTimeout: .milliseconds(300))) { server in
            let raw = try await client(server.port) { connection in
                connection.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
                return String(decoding: try connection.readUntilClose(), as: UTF8.self)
            }
            #expect(raw.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        }
    }

    @Test func evictsIdleKeepAliveConnectionsAtTheCapThenAnswers503() async throws {
        let gate = Gate()
        let handler: HTTPServer.Handler = { request in
            if request.path == "/block" { await gate.wait() }
            return .text(200, "ok")
        }
        try await withServer(.make(maxConnections: 4), handler: handler) { server in
            let port = server.port
            // Four idle keep-alive connections fill the cap; a fifth gets served, the oldest idle one is closed.
            let evicted = try await LoopbackClient.run {
                let idle = try (0..<4).map { _ in try LoopbackClient(port: port) }
                for connection in idle { _ = try connection.request("GET", "/") }
                let fifth = try LoopbackClient(port: port)
                let status = try fifth.request("GET", "/").status
                return (status, try idle[0].readUntilClose().isEmpty)
            }
            #expect(evicted == (200, true))

            // Four connections busy in their handlers: nothing idle to close, so a fifth is refused at once.
            let port2 = server.port
            let busy = Task {
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<4 {
                        group.addTask { try await client(port2) { try $0.request("GET", "/block").status } }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            }
            try await gate.waitForWaiters(4)
            let refused = try await client(port) { connection in
                String(decoding: try connection.readUntilClose(), as: UTF8.self)
            }
            #expect(refused.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"))
            gate.open()
            #expect(try await busy.value == [200, 200, 200, 200])
        }
    }

    @Test func finishesInFlightRequestsOnShutdownThenStops() async throws {
        let gate = Gate()
        let server = try HTTPServer(configuration: .make(), logger: .init(label: "t")) { _ in
            await gate.wait()
            return .text(200, "finished")
        }
        let running = Task { try await server.run() }
        let port = server.port
        let inFlight = Task { try await client(port) { try $0.request("GET", "/slow") } }
        try await gate.waitForWaiters(1)
        server.shutdown()
        #expect(server.isShuttingDown)
        gate.open()
        let response = try await inFlight.value
        #expect(response.status == 200)
        #expect(response.text == "finished\n")
        #expect(response.header("Connection") == "close")
        try await running.value
        // The listener is gone.
        await #expect(throws: LoopbackClient.ClientError.self) { try await client(port) { _ in 0 } }
    }

    @Test func servesWhileManyConnectionsIdleOrTrickle() async throws {
        try await withServer { server in
            let port = server.port
            let status = try await LoopbackClient.run {
                let idle = try (0..<300).map { _ in try LoopbackClient(port: port) }
                let trickling = try (0..<200).map { _ in try LoopbackClient(port: port) }
                for connection in trickling { connection.send("POST /webhook HTTP/1.1\r\nHost: x\r\n") }
                let real = try LoopbackClient(port: port)
                let status = try real.request("GET", "/real").status
                withExtendedLifetime((idle, trickling)) {}
                return status
            }
            #expect(status == 200)
        }
    }
}

/// Lets a test hold handlers until it opens the gate, and know how many are waiting.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>], count: Int)>((false, [], 0))

    func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state -> Bool in
                state.count += 1
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once `count` handlers have reached `wait()`.
    func waitForWaiters(_ count: Int) async throws {
        while state.withLock({ $0.count }) < count {
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
