import Foundation
import Synchronization
import Testing

@testable import KubeActionsRunner

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
}
