import Foundation
import Testing

@testable import App
@testable import HTTPClient
@testable import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// libcurl against a real HTTP/2 server over TLS: nghttpd (Debian's nghttp2-server), with a throw-away certificate
/// from openssl. GitHub and the Kubernetes API server both speak HTTP/2; a burst that starts with no connection open
/// must share one multiplexed connection instead of opening (and TLS-handshaking) one per request.
@Suite(
    .serialized,
    .enabled(if: NGHTTPServer.isInstalled, "needs nghttpd (Debian: nghttp2-server); scripts/test --install installs it")
)
struct CurlTransportHTTP2Tests {
    @Test func aColdBurstSharesOneMultiplexedConnection() async throws {
        let server = try NGHTTPServer.start()
        defer { server.stop() }
        let transport = server.transport()
        defer { transport.shutdown() }

        let answers = try await Self.send(100, to: "https://127.0.0.1:\(server.port)/ok", over: transport)

        #expect(answers.count == 100)
        #expect(answers.allSatisfy { $0.status == 200 && $0.body == Array("multiplexed\n".utf8) })
        #expect(server.log().contains("The negotiated protocol: h2"))
        let connections = server.connectionsWithRequests()
        #expect(connections.count == 1, "requests came on connections \(connections)")
    }

    /// nghttpd allows 100 streams per connection; without the cap, each request past the 100th would open a
    /// connection of its own (measured: 116 to 151 connections for 250 requests).
    @Test func onceAHostMultiplexesItsConnectionsAreCapped() async throws {
        let server = try NGHTTPServer.start()
        defer { server.stop() }
        let transport = server.transport(multiplexedConnectionsPerHost: 3)
        defer { transport.shutdown() }
        let url = "https://127.0.0.1:\(server.port)/ok"

        _ = try await transport.send(HTTPClientRequest(method: "GET", url: url))
        let answers = try await Self.send(250, to: url, over: transport)

        #expect(answers.count == 250)
        #expect(answers.allSatisfy { $0.status == 200 })
        let connections = server.connectionsWithRequests()
        #expect(connections.count <= 3, "requests came on connections \(connections)")
    }

    /// The cap belongs to the transport; a server that answers over HTTP/1.1 lifts it, as there every request in
    /// flight needs a connection of its own.
    @Test func anHTTP1AnswerLiftsTheCap() async throws {
        let server = try NGHTTPServer.start()
        defer { server.stop() }
        let transport = server.transport(multiplexedConnectionsPerHost: 2)
        defer { transport.shutdown() }
        _ = try await transport.send(HTTPClientRequest(method: "GET", url: "https://127.0.0.1:\(server.port)/ok"))

        try await withServer(handler: CurlTransportTests.echo) { http1 in
            _ = try await transport.send(HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(http1.port)/c"))
            let answers = try await Self.send(20, to: "http://127.0.0.1:\(http1.port)/slow", over: transport)
            let connections = Set(
                try answers.map {
                    try JSONSerialization.jsonObject(with: Data($0.body)) as! [String: Any]
                }.compactMap { $0["connection"] as? Int }
            )
            #expect(connections.count == 20, "20 slow requests at once, each on a connection of its own")
        }
    }

    private static func send(
        _ count: Int,
        to url: String,
        over transport: CurlTransport
    ) async throws -> [HTTPClientResponse] {
        try await withThrowingTaskGroup(of: HTTPClientResponse.self) { group in
            for _ in 0..<count {
                group.addTask {
                    try await transport.send(HTTPClientRequest(method: "GET", url: url, timeout: .seconds(10)))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }
}

/// An nghttpd process on a free loopback port, serving `ok` from a temporary directory, its log in a file (a pipe
/// would fill up and stall the server).
private struct NGHTTPServer {
    let process: Process
    let port: Int
    let directory: URL
    let certificate: [UInt8]

    /// Whether `nghttpd` is on the PATH.
    static var isInstalled: Bool {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/nghttpd") }
    }

    static func start() throws -> NGHTTPServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("h2-\(UUID().uuidString)")
        let htdocs = directory.appendingPathComponent("htdocs")
        try FileManager.default.createDirectory(at: htdocs, withIntermediateDirectories: true)
        try Data("multiplexed\n".utf8).write(to: htdocs.appendingPathComponent("ok"))
        let key = directory.appendingPathComponent("key.pem").path
        let cert = directory.appendingPathComponent("cert.pem").path
        try run(
            "/usr/bin/env",
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1",
            ]
        )
        let port = unusedPort()
        let logPath = directory.appendingPathComponent("nghttpd.log").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["nghttpd", "-v", "--address=127.0.0.1", "--htdocs=\(htdocs.path)", "\(port)", key, cert]
        // One handle for both: two would each write from offset 0 and overwrite each other's lines.
        let log = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let server = NGHTTPServer(
            process: process,
            port: port,
            directory: directory,
            certificate: Array(try Data(contentsOf: URL(fileURLWithPath: cert)))
        )
        try server.waitUntilListening()
        return server
    }

    /// SIGKILL, not `terminate()`: a process spawned from the test runner's threads inherits their blocked
    /// signals, SIGTERM among them, and would never exit.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// A transport that trusts the server's certificate.
    func transport(multiplexedConnectionsPerHost: Int = 8) -> CurlTransport {
        var configuration = CurlTransport.Configuration(tls: TLSConfiguration(caData: certificate))
        configuration.multiplexedConnectionsPerHost = multiplexedConnectionsPerHost
        return CurlTransport(configuration: configuration)
    }

    func log() -> String {
        (try? String(contentsOfFile: directory.appendingPathComponent("nghttpd.log").path, encoding: .utf8)) ?? ""
    }

    /// nghttpd numbers its sessions `[id=N]`; these are the ones that received a request (HEADERS frame).
    func connectionsWithRequests() -> Set<String> {
        var ids = Set<String>()
        for line in log().split(separator: "\n") where line.contains("recv HEADERS frame") {
            if let open = line.range(of: "[id="), let close = line[open.upperBound...].firstIndex(of: "]") {
                ids.insert(String(line[open.upperBound..<close]))
            }
        }
        return ids
    }

    /// Polls with a TCP connect (nghttpd prints nothing when it starts listening).
    private func waitUntilListening() throws {
        for _ in 0..<500 {
            guard process.isRunning else { throw Failure("nghttpd exited: \(log())") }
            if (try? LoopbackClient(port: port)) != nil { return }
            usleep(10_000)
        }
        throw Failure("nghttpd did not listen on \(port)")
    }

    private static func run(_ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw Failure("\(arguments.first ?? executable) failed") }
    }
}

private struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
