import Foundation
import Synchronization
import Testing

@testable import App
@testable import HTTPClient
@testable import HTTPServer
@testable import TestSupport

/// libcurl against the project's own server over loopback.
@Suite struct CurlTransportTests {
    /// Echoes what it received as JSON, and which connection it came on.
    static let echo: HTTPServer.Handler = { request in
        if request.path == "/slow" { try? await Task.sleep(for: .milliseconds(1500)) }
        let headers = Dictionary(request.headers.map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { $1 })
        let object: [String: Any] = [
            "method": request.method, "target": request.target, "headers": headers,
            "body": String(decoding: request.body, as: UTF8.self), "connection": Int(request.connectionID),
        ]
        let body = try! JSONSerialization.data(withJSONObject: object)
        return HTTPResponse(
            status: request.path == "/created" ? 201 : 200,
            headers: [("X-Echo", "1")],
            body: Array(body)
        )
    }

    private func json(_ response: HTTPClientResponse) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(response.body)) as! [String: Any]
    }

    @Test func messagesShowAURLWithoutItsQuery() {
        #expect(
            CurlRequest.redacted("https://api.github.com/app/installations?token=x&y=z")
                == "https://api.github.com/app/installations"
        )
        #expect(
            CurlRequest.redacted("https://10.0.0.1:6443/api/v1/namespaces/runners/secrets")
                == "https://10.0.0.1:6443/api/v1/namespaces/runners/secrets"
        )
        #expect(CurlRequest.redacted("?only=query").isEmpty)
    }

    @Test func readsAnAnswerExactlyAtTheCapAndAbortsOneByteOver() async throws {
        var configuration = CurlTransport.Configuration()
        configuration.maxAnswerBytes = 10_000
        let transport = CurlTransport(configuration: configuration)
        defer { transport.shutdown() }
        let handler: HTTPServer.Handler = { request in
            HTTPResponse(
                status: 200,
                headers: [],
                body: [UInt8](repeating: 0x61, count: Int(request.path.dropFirst())!)
            )
        }
        try await withServer(handler: handler) { server in
            let exact = try await transport.send(
                HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(server.port)/10000")
            )
            #expect(exact.body.count == 10_000)
            let error = await #expect(throws: HTTPTransportError.self) {
                try await transport.send(
                    HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(server.port)/10001?token=t")
                )
            }
            #expect(
                error?.message
                    == "answer from http://127.0.0.1:\(server.port)/10001 is larger than 10000 bytes; aborted"
            )
            // The transport goes on working after an aborted transfer.
            let after = try await transport.send(
                HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(server.port)/5")
            )
            #expect(after.body.count == 5)
        }
    }

    @Test func sendsMethodHeadersAndBodyAndReadsTheResponse() async throws {
        let transport = CurlTransport()
        defer { transport.shutdown() }
        try await withServer(handler: Self.echo) { server in
            let response = try await transport.send(
                HTTPClientRequest(
                    method: "POST",
                    url: "http://127.0.0.1:\(server.port)/created?x=1",
                    headers: [("Authorization", "Bearer t"), ("Content-Type", "application/json")],
                    body: Array(#"{"a":1}"#.utf8)
                )
            )
            #expect(response.status == 201)
            #expect(response.header("x-echo") == "1")
            let echoed = try json(response)
            #expect(echoed["method"] as? String == "POST")
            #expect(echoed["target"] as? String == "/created?x=1")
            #expect(echoed["body"] as? String == #"{"a":1}"#)
            let headers = echoed["headers"] as! [String: String]
            #expect(headers["authorization"] == "Bearer t")
            #expect(headers["expect"] == nil)

            for method in ["DELETE", "PATCH", "GET"] {
                let answer = try await transport.send(
                    HTTPClientRequest(
                        method: method,
                        url: "http://127.0.0.1:\(server.port)/m",
                        body: method == "PATCH" ? [1] : nil
                    )
                )
                #expect(try json(answer)["method"] as? String == method)
            }
        }
    }

    @Test func reusesConnectionsAndRunsManyRequestsAtOnce() async throws {
        let transport = CurlTransport()
        defer { transport.shutdown() }
        try await withServer(handler: Self.echo) { server in
            let url = "http://127.0.0.1:\(server.port)/c"
            let first =
                try json(try await transport.send(HTTPClientRequest(method: "GET", url: url)))["connection"] as? Int
            let second =
                try json(try await transport.send(HTTPClientRequest(method: "GET", url: url)))["connection"] as? Int
            #expect(first != nil && first == second)  // keep-alive: the same connection

            let connections = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<200 {
                    group.addTask {
                        let response = try await transport.send(HTTPClientRequest(method: "GET", url: url))
                        let object = try JSONSerialization.jsonObject(with: Data(response.body)) as! [String: Any]
                        return object["connection"] as! Int
                    }
                }
                return try await group.reduce(into: Set<Int>()) { $0.insert($1) }
            }
            #expect(connections.count > 1)  // in flight together, over several connections
        }
    }

    @Test func failsWithTimeoutConnectAndCancelled() async throws {
        let transport = CurlTransport()
        defer { transport.shutdown() }
        try await withServer(handler: Self.echo) { server in
            await #expect(throws: HTTPTransportError(kind: .timeout, message: "Timeout was reached")) {
                try await transport.send(
                    HTTPClientRequest(
                        method: "GET",
                        url: "http://127.0.0.1:\(server.port)/slow",
                        timeout: .milliseconds(200)
                    )
                )
            }
            let started = ContinuousClock.now
            let task = Task {
                try await transport.send(
                    HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(server.port)/slow", timeout: .seconds(10))
                )
            }
            try await Task.sleep(for: .milliseconds(100))
            task.cancel()
            await #expect(throws: HTTPTransportError.self) { try await task.value }
            #expect(ContinuousClock.now - started < .seconds(2))
        }
        let closedPort = unusedPort()
        do {
            _ = try await transport.send(HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(closedPort)/"))
            Issue.record("expected a connection error")
        } catch {
            #expect(error.kind == .connect)
        }
    }

    @Test func shutdownFailsTransfersInFlightAndLaterRequests() async throws {
        let transport = CurlTransport()
        try await withServer(handler: Self.echo) { server in
            let url = "http://127.0.0.1:\(server.port)/slow"
            let inFlight = (0..<3).map { _ in
                Task { try await transport.send(HTTPClientRequest(method: "GET", url: url, timeout: .seconds(10))) }
            }
            try await Task.sleep(for: .milliseconds(200))
            let started = ContinuousClock.now
            transport.shutdown()
            for task in inFlight {
                await #expect(throws: HTTPTransportError(kind: .cancelled, message: "transport stopped")) {
                    try await task.value
                }
            }
            #expect(ContinuousClock.now - started < .seconds(1))
            await #expect(throws: HTTPTransportError(kind: .cancelled, message: "transport stopped")) {
                try await transport.send(HTTPClientRequest(method: "GET", url: url))
            }
        }
    }

    /// Cancellation against completion, hammered: every call ends exactly once (a double resume traps, a lost one
    /// hangs), and a call cancelled before it was handed over never runs (it used to run to its end when the
    /// transport's thread drained the cancellation before the transfer arrived).
    @Test func cancellationRacingCompletionEndsEveryCallExactlyOnce() async throws {
        let transport = CurlTransport()
        defer { transport.shutdown() }
        try await withServer(handler: Self.echo) { server in
            let slow = "http://127.0.0.1:\(server.port)/slow"
            let fast = "http://127.0.0.1:\(server.port)/fast"
            let started = ContinuousClock.now
            var answered = 0
            for _ in 0..<300 {
                let task = Task {
                    withUnsafeCurrentTask { $0?.cancel() }
                    return try await transport.send(HTTPClientRequest(method: "GET", url: slow, timeout: .seconds(10)))
                }
                do {
                    _ = try await task.value
                    answered += 1
                } catch {
                    #expect((error as? HTTPTransportError)?.kind == .cancelled)
                }
            }
            #expect(answered == 0)  // none ran its 1.5 s
            #expect(ContinuousClock.now - started < .seconds(3))

            let outcomes = await withTaskGroup(of: Bool.self) { group in
                for index in 0..<400 {
                    group.addTask {
                        let task = Task {
                            try await transport.send(HTTPClientRequest(method: "GET", url: fast, timeout: .seconds(10)))
                        }
                        // Cancel at every stage: before the hand-over, in flight, as the answer completes, after.
                        if index % 4 != 0 { try? await Task.sleep(for: .microseconds(index % 7 * 150)) }
                        task.cancel()
                        return (try? await task.value) != nil
                    }
                }
                var results: [Bool] = []
                for await result in group { results.append(result) }
                return results
            }
            #expect(outcomes.count == 400)  // every call ended once
            // The transport still works after the storm.
            let after = try await transport.send(HTTPClientRequest(method: "GET", url: fast))
            #expect(after.status == 200)
        }
    }

    /// A client with a connection cap holds no more than that many connections at once: the rest wait their turn.
    @Test func holdsNoMoreConnectionsThanItsCap() async throws {
        var configuration = CurlTransport.Configuration()
        configuration.maxTotalConnections = 2
        let transport = CurlTransport(configuration: configuration)
        defer { transport.shutdown() }
        let handler: HTTPServer.Handler = { request in
            try? await Task.sleep(for: .milliseconds(50))
            return .text(200, "\(request.connectionID)")
        }
        try await withServer(handler: handler) { server in
            let url = "http://127.0.0.1:\(server.port)/x"
            let connections = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        let response = try await transport.send(HTTPClientRequest(method: "GET", url: url))
                        return String(decoding: response.body, as: UTF8.self)
                    }
                }
                var seen: Set<String> = []
                for try await connection in group { seen.insert(connection) }
                return seen
            }
            #expect(connections.count <= 2 && !connections.isEmpty)
        }
    }

    @Test(arguments: [false, true])
    func anAnswerOverTheLimitFailsAsTooLargeAndOneAtTheLimitIsRead(chunked: Bool) async throws {
        var configuration = CurlTransport.Configuration()
        configuration.maxAnswerBytes = 100_000
        let transport = CurlTransport(configuration: configuration)
        defer { transport.shutdown() }
        for (size, fits) in [(100_000, true), (100_001, false), (3_000_000, false)] {
            let port = try RawResponder.start(bodySize: size, chunked: chunked)
            do {
                let response = try await transport.send(
                    HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(port)/list", timeout: .seconds(10))
                )
                #expect(fits, "\(size) bytes were accepted")
                #expect(response.body.count == size)
            } catch {
                #expect(!fits, "\(size) bytes failed: \(error)")
                #expect(error.kind == .tooLarge)
                #expect(error.message.contains("100000 bytes"))
            }
        }
    }
}

/// A one-shot HTTP/1.1 server on a thread of its own: answers its first request with `bodySize` bytes, with a
/// Content-Length or chunked (announcing no size, as a compressed or streamed answer does), then closes.
enum RawResponder {
    static func start(bodySize: Int, chunked: Bool) throws -> Int {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(listener, pointer, length) == 0 && listen(listener, 1) == 0
                    && getsockname(listener, pointer, &length) == 0
            }
        }
        guard bound else {
            close(listener)
            throw POSIXError(.EADDRNOTAVAIL)
        }
        let thread = Thread {
            defer { close(listener) }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            defer { close(connection) }
            var request: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while request.suffix(4) != [13, 10, 13, 10] {
                let count = read(connection, &buffer, buffer.count)
                guard count > 0 else { return }
                request += buffer[..<count]
            }
            // MSG_NOSIGNAL: the client hangs up at its limit, and a SIGPIPE would end the whole test process.
            func sendAll(_ bytes: [UInt8]) -> Bool {
                var sent = 0
                while sent < bytes.count {
                    let count = bytes[sent...].withUnsafeBytes {
                        Glibc.send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
                    }
                    guard count > 0 else { return false }
                    sent += count
                }
                return true
            }
            let framing = chunked ? "Transfer-Encoding: chunked" : "Content-Length: \(bodySize)"
            guard sendAll(Array("HTTP/1.1 200 OK\r\n\(framing)\r\nConnection: close\r\n\r\n".utf8)) else { return }
            var left = bodySize
            while left > 0 {
                let piece = [UInt8](repeating: UInt8(ascii: "x"), count: min(left, 65_536))
                left -= piece.count
                let framed =
                    chunked ? Array("\(String(piece.count, radix: 16))\r\n".utf8) + piece + Array("\r\n".utf8) : piece
                guard sendAll(framed) else { return }  // the client aborted: the limit worked
            }
            if chunked { _ = sendAll(Array("0\r\n\r\n".utf8)) }
        }
        thread.start()
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
