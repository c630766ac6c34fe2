import HTTPServer
import Logging
import Observability
import Runners
import ServiceLifecycle
import Synchronization
import Webhook

/// The one place that wires everything: configuration in, a runnable service out.
package struct Application: Sendable {
    package let server: HTTPServer
    /// The listener for `/metrics`, `/health` and `/ready` when `METRICS_PORT` is set.
    package let metricsServer: HTTPServer?
    package let metrics: Metrics
    package let provisioner: any RunnerProvisioner
    /// Services that run beside the server (the cluster monitor, the memory trimmer).
    private let services: [any Service]
    private let logger: Logger

    /// Builds the service and binds its port (so a taken port fails here, before anything runs).
    ///
    /// - Parameter serverConfiguration: overrides for tests (timeouts, port 0); derived from `configuration` otherwise.
    /// - Parameter metricsServerConfiguration: the same for the `METRICS_PORT` listener.
    package static func build(
        configuration: Configuration,
        logger: Logger,
        provisioner: any RunnerProvisioner,
        metrics: Metrics = Metrics(),
        services: [any Service] = [],
        repositories: RepositoryRegistry? = nil,
        serverConfiguration: HTTPServer.Configuration? = nil,
        metricsServerConfiguration: HTTPServer.Configuration? = nil
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
        var server = serverConfiguration ?? HTTPServer.Configuration()
        let statistics = server.statistics
        metrics.observe(statistics)  // the load-shedding series exist from the start, at 0

        var router = Router()
        router.add("POST", "/webhook") { await webhook.handle($0) }
        // With METRICS_PORT, the operational routes get a listener of their own: the webhook port then answers
        // nothing but /webhook, and probes and scrapes never queue behind internet traffic.
        var operations = Router()
        operations.add("GET", "/metrics") { _ in
            metrics.observe(statistics)
            return HTTPResponse(
                status: 200,
                headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                body: metrics.exposition()
            )
        }
        operations.add("GET", "/health") { _ in .text(200, "ok") }
        operations.add("GET", "/ready") { _ in
            if serverReference.isShuttingDown { return .text(503, "not ready: shutting down") }
            switch await provisioner.readiness() {
            case .ready: return .text(200, "ready")
            case .notReady(let reason): return .text(503, "not ready: \(reason)")
            }
        }

        if serverConfiguration == nil {
            server.host = configuration.listenAddress
            server.port = configuration.port
        }
        server.maxBodyBytes = configuration.maxBodyBytes
        server.maxConnections = configuration.maxConnections
        server.maxInflightBytes = configuration.maxInflightBodyBytes
        var metricsServer: HTTPServer?
        if let metricsPort = configuration.metricsPort {
            var metrics = metricsServerConfiguration ?? HTTPServer.Configuration()
            if metricsServerConfiguration == nil {
                metrics.host = configuration.listenAddress
                metrics.port = metricsPort
            }
            // Scrapes and probes only: few connections, no bodies to speak of.
            metrics.maxConnections = 64
            metrics.maxBodyBytes = 1024
            metrics.maxInflightBytes = 64 * 1024
            let routes = operations
            metricsServer = try HTTPServer(configuration: metrics, logger: logger) { await routes.handle($0) }
        } else {
            router.merge(operations)
        }
        let routes = router
        let httpServer = try HTTPServer(configuration: server, logger: logger) { await routes.handle($0) }
        serverReference.set(httpServer)
        return Application(
            server: httpServer,
            metricsServer: metricsServer,
            metrics: metrics,
            provisioner: provisioner,
            services: services,
            logger: logger
        )
    }

    /// Runs until SIGTERM or SIGINT, then shuts down gracefully.
    package func run() async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: server)] + (metricsServer.map { [.init(service: $0)] } ?? [])
                    + services.map { .init(service: $0) },
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
