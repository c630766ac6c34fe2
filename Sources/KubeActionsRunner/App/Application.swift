import Logging
import ServiceLifecycle
import Synchronization

/// The one place that wires everything: configuration in, a runnable service out.
public struct Application: Sendable {
    public let server: HTTPServer
    public let metrics: Metrics
    public let provisioner: any RunnerProvisioner
    /// Services that run beside the server (the cluster monitor, the memory trimmer).
    private let services: [any Service]
    private let logger: Logger

    /// Builds the service and binds its port (so a taken port fails here, before anything runs).
    ///
    /// - Parameter serverConfiguration: overrides for tests (timeouts, port 0); derived from `configuration` otherwise.
    public static func build(
        configuration: Configuration,
        logger: Logger,
        provisioner: any RunnerProvisioner,
        metrics: Metrics = Metrics(),
        services: [any Service] = [],
        repositories: RepositoryRegistry? = nil,
        serverConfiguration: HTTPServer.Configuration? = nil
    ) throws(HTTPServerError) -> Application {
        var noteRepository: (@Sendable (String, String) -> Void)?
        if let repositories {
            noteRepository = { owner, repo in repositories.note(owner: owner, repo: repo) }
        }
        var secrets = [configuration.webhookSecret]
        if let previous = configuration.previousWebhookSecret { secrets.append(previous) }
        let webhook = WebhookHandler(
            verifier: SignatureVerifier(secrets: secrets),
            matcher: configuration.labelMatcher,
            deliveries: DeliveryLog(),
            provisioner: provisioner,
            metrics: metrics,
            logger: logger,
            onVerifiedRepository: noteRepository
        )
        let serverReference = ServerReference()

        var router = Router()
        router.add("POST", "/webhook") { await webhook.handle($0) }
        router.add("GET", "/metrics") { _ in
            HTTPResponse(
                status: 200,
                headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                body: metrics.exposition()
            )
        }
        router.add("GET", "/health") { _ in .text(200, "ok") }
        router.add("GET", "/ready") { _ in
            if serverReference.isShuttingDown { return .text(503, "not ready: shutting down") }
            switch await provisioner.readiness() {
            case .ready: return .text(200, "ready")
            case .notReady(let reason): return .text(503, "not ready: \(reason)")
            }
        }

        var server = serverConfiguration ?? HTTPServer.Configuration()
        if serverConfiguration == nil {
            server.host = configuration.listenAddress
            server.port = configuration.port
        }
        server.maxBodyBytes = configuration.maxBodyBytes
        server.maxConnections = configuration.maxConnections
        server.maxInflightBytes = configuration.maxInflightBodyBytes
        let routes = router
        let httpServer = try HTTPServer(configuration: server, logger: logger) { await routes.handle($0) }
        serverReference.set(httpServer)
        return Application(
            server: httpServer,
            metrics: metrics,
            provisioner: provisioner,
            services: services,
            logger: logger
        )
    }

    /// Runs until SIGTERM or SIGINT, then shuts down gracefully.
    public func run() async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: server)] + services.map { .init(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}

/// Lets `/ready` see the server it is served by, which exists only after the routes are built.
private final class ServerReference: Sendable {
    private let server = Mutex<HTTPServer?>(nil)

    func set(_ server: HTTPServer) {
        self.server.withLock { $0 = server }
    }

    var isShuttingDown: Bool {
        server.withLock { $0?.isShuttingDown ?? false }
    }
}
