import App
import HTTPClient
import HTTPServer
import Logging
import Observability
import Runners
import Support
import Synchronization
import Webhook

#if canImport(Glibc)
import Glibc
#endif

/// Collects log lines so tests can assert on them (and on what they must never contain).
package final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    package var all: [String] { lines.withLock { $0 } }
    package var text: String { all.joined() }

    package func logger(level: Logger.Level = .trace) -> Logger {
        Logger(label: "test") { label in
            JSONLogHandler(label: label, level: level, format: .json) { [self] line in
                self.lines.withLock { $0.append(line) }
            }
        }
    }
}

/// A provisioner whose answers the test chooses; remembers every request.
package final class RecordingProvisioner: RunnerProvisioner {
    package enum Behaviour: Sendable {
        case create
        case fail(ProvisioningError)
        case notQueued(String)
        /// Takes this long on its clock, then creates (for deadline tests); cancelled, it fails as a cancelled call
        /// does.
        case slow(Duration)
        /// Takes this long on its clock, then creates, even when cancelled meanwhile (its last call was answered as
        /// the deadline cancelled it).
        case slowToTheEnd(Duration)
        /// The content-creating budget is spent.
        case deferred(String)
    }

    private let state = Mutex<(requests: [RunnerRequest], created: Set<Int64>)>(([], []))
    package let behaviour: Behaviour
    package let readinessValue: Readiness
    private let clock: MonotonicClock

    package init(
        _ behaviour: Behaviour = .create,
        readiness: Readiness = .ready,
        clock: some Clock<Duration> = ContinuousClock()
    ) {
        self.behaviour = behaviour
        self.readinessValue = readiness
        self.clock = MonotonicClock(clock)
    }

    package var requests: [RunnerRequest] { state.withLock { $0.requests } }

    package func provision(_ request: RunnerRequest) async throws(ProvisioningError) -> ProvisionOutcome {
        state.withLock { $0.requests.append(request) }
        switch behaviour {
        case .fail(let error): throw error
        case .notQueued(let status): return .notQueued(status: status)
        case .deferred(let reason): return .deferred(reason: reason)
        case .slow(let duration):
            try? await clock.sleep(for: duration)
            if Task.isCancelled {
                throw ProvisioningError(status: 503, reason: "Kubernetes API unavailable: cancelled")
            }
            return create(request)
        case .slowToTheEnd(let duration):
            try? await clock.sleep(for: duration)
            return create(request)
        case .create:
            return create(request)
        }
    }

    private func create(_ request: RunnerRequest) -> ProvisionOutcome {
        let inserted = state.withLock { $0.created.insert(request.jobID).inserted }
        return inserted
            ? .created(runnerJob: request.runnerJobName) : .alreadyProvisioned(runnerJob: request.runnerJobName)
    }

    package func readiness() async -> Readiness { readinessValue }
}

extension Configuration {
    /// A valid configuration with test defaults; override what a test is about.
    package static func make(
        secret: String = Fixtures.secret,
        previousSecret: String? = nil,
        labelMatchers: String? = nil,
        mode: RunnerMode = .dindRootless,
        maxBodyBytes: Int = Configuration.Defaults.maxBodyBytes
    ) throws -> Configuration {
        var environment = [
            "WEBHOOK_SECRET": secret, "DRY_RUN": "true", "RUNNER_MODE": mode.rawValue,
            "MAX_BODY_BYTES": String(maxBodyBytes),
        ]
        environment["WEBHOOK_SECRET_PREVIOUS"] = previousSecret
        environment["LABEL_MATCHERS"] = labelMatchers
        return try Configuration(environment: environment, files: InMemoryFiles())
    }
}

extension HTTPServer.Configuration {
    /// Loopback, an ephemeral port, and the given timeouts.
    package static func make(
        maxConnections: Int = 4096,
        maxBodyBytes: Int = 1024 * 1024,
        headerTimeout: Duration = .seconds(10),
        bodyTimeout: Duration = .seconds(30),
        idleTimeout: Duration = .seconds(60),
        shutdownTimeout: Duration = .seconds(5)
    ) -> HTTPServer.Configuration {
        var configuration = HTTPServer.Configuration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.maxConnections = maxConnections
        configuration.maxBodyBytes = maxBodyBytes
        configuration.headerTimeout = headerTimeout
        configuration.bodyTimeout = bodyTimeout
        configuration.idleTimeout = idleTimeout
        configuration.shutdownTimeout = shutdownTimeout
        return configuration
    }
}

/// Runs an HTTP server for the duration of `body`, then shuts it down and waits for it.
package func withServer<T: Sendable>(
    _ configuration: HTTPServer.Configuration = .make(),
    handler: @escaping HTTPServer.Handler = { request in
        .text(200, "\(request.method) \(request.path) \(request.body.count)")
    },
    _ body: (HTTPServer) async throws -> T
) async throws -> T {
    let server = try HTTPServer(configuration: configuration, logger: Logger(label: "test-server"), handler: handler)
    let task = Task { try await server.run() }
    do {
        let result = try await body(server)
        server.shutdown()
        try await task.value
        return result
    } catch {
        server.shutdown()
        try? await task.value
        throw error
    }
}

/// Runs a whole application (all routes) for the duration of `body`.
package func withApplication<T: Sendable>(
    configuration: Configuration,
    provisioner: any RunnerProvisioner = RecordingProvisioner(),
    logs: LogCapture = LogCapture(),
    _ body: (Application) async throws -> T
) async throws -> T {
    let app = try Application.build(
        configuration: configuration,
        upstreams: .provisioner(provisioner),
        logger: logs.logger(),
        serverConfiguration: .make()
    )
    let task = Task { try await app.server.run() }
    do {
        let result = try await body(app)
        app.server.shutdown()
        try await task.value
        return result
    } catch {
        app.server.shutdown()
        try? await task.value
        throw error
    }
}

/// Blocking client work, off the cooperative pool.
package func client<T: Sendable>(
    _ port: Int,
    timeout: Duration = .seconds(15),
    _ work: @escaping @Sendable (LoopbackClient) throws -> T
)
    async throws -> T
{
    try await LoopbackClient.run {
        let connection = try LoopbackClient(port: port, timeout: timeout)
        return try work(connection)
    }
}

/// A signed webhook delivery's headers.
package func deliveryHeaders(
    event: String,
    body: [UInt8],
    secret: String = Fixtures.secret,
    delivery: String = "d-\(Int.random(in: 0..<1_000_000_000))",
    contentType: String = "application/json"
) -> [(String, String)] {
    [
        ("Content-Type", contentType),
        ("X-GitHub-Event", event),
        ("X-GitHub-Delivery", delivery),
        ("X-Hub-Signature-256", SignatureVerifier.sign(body, secret: Secret(secret))),
    ]
}

/// A loopback port with nothing listening on it.
package func unusedPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            _ = bind(fd, pointer, length)
            return getsockname(fd, pointer, &length)
        }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A transport that answers from a script and remembers every request.
package final class RecordingTransport: HTTPTransport {
    package typealias Answer = @Sendable (HTTPClientRequest) -> Result<HTTPClientResponse, HTTPTransportError>
    private let state = Mutex<(requests: [HTTPClientRequest], answers: [Answer])>(([], []))

    package init(_ answers: [Answer] = []) {
        state.withLock { $0.answers = answers }
    }

    /// Answers the next request with `status`, `body` and headers.
    package func enqueue(_ status: Int, _ body: String = "", headers: [(String, String)] = []) {
        let response = HTTPClientResponse(
            status: status,
            headers: headers.map { (name: $0.0, value: $0.1) },
            body: Array(body.utf8)
        )
        state.withLock { $0.answers.append { _ in .success(response) } }
    }

    package func enqueue(_ error: HTTPTransportError) {
        state.withLock { $0.answers.append { _ in .failure(error) } }
    }

    package var requests: [HTTPClientRequest] { state.withLock { $0.requests } }

    package func send(_ request: HTTPClientRequest) async throws(HTTPTransportError) -> HTTPClientResponse {
        let answer = state.withLock { state -> Answer? in
            state.requests.append(request)
            return state.answers.isEmpty ? nil : state.answers.removeFirst()
        }
        guard let answer else { throw HTTPTransportError(kind: .connect, message: "no scripted answer") }
        return try answer(request).get()
    }
}

extension HTTPClientRequest {
    package func header(_ name: String) -> String? {
        headers.last { $0.name.lowercased() == name.lowercased() }?.value
    }

    package var bodyText: String { String(decoding: body ?? [], as: UTF8.self) }
}

/// Waits, polling every 5 ms, until `condition` holds; throws `WaitTimeout` after `limit` (an event that never
/// came), which fails the test that waited.
package func waitUntil(
    _ what: String,
    limit: Duration = .seconds(10),
    _ condition: @Sendable () -> Bool
) async throws {
    let start = ContinuousClock.now
    while !condition() {
        guard ContinuousClock.now - start < limit else { throw WaitTimeout(what: what) }
        try await Task.sleep(for: .milliseconds(5))
    }
}

package struct WaitTimeout: Error, CustomStringConvertible {
    package var what: String
    package var description: String { "timed out waiting until \(what)" }
}

/// A transport that answers each request with what `route` returns for it (a tiny server in process) and remembers
/// every request; `route` may suspend (to hold an answer back while a test looks at the waiting callers).
package final class RoutingTransport: HTTPTransport {
    package typealias Route = @Sendable (HTTPClientRequest) async -> HTTPClientResponse
    private let route: Route
    private let recorded = Mutex<[HTTPClientRequest]>([])

    package init(_ route: @escaping Route) {
        self.route = route
    }

    package var requests: [HTTPClientRequest] { recorded.withLock { $0 } }

    /// The requests whose URL ends with `suffix` (query included).
    package func requests(endingWith suffix: String) -> [HTTPClientRequest] {
        requests.filter { $0.url.hasSuffix(suffix) }
    }

    package func send(_ request: HTTPClientRequest) async throws(HTTPTransportError) -> HTTPClientResponse {
        recorded.withLock { $0.append(request) }
        return await route(request)
    }
}

extension HTTPClientResponse {
    /// A JSON answer as GitHub sends it.
    package static func json(_ status: Int, _ body: String, headers: [(String, String)] = []) -> HTTPClientResponse {
        HTTPClientResponse(
            status: status,
            headers: [(name: "Content-Type", value: "application/json; charset=utf-8")]
                + headers.map { (name: $0.0, value: $0.1) },
            body: Array(body.utf8)
        )
    }
}
