import GitHub
import HTTPServer
import Kubernetes
import Logging
import Observability
import Runners
import ServiceLifecycle
import Support
import Synchronization
import Webhook

/// The one composition root: a `Configuration` in, the whole object graph out, ready to run.
///
/// `serve` builds it over the real upstreams, `demo` and `DRY_RUN` over in-memory ones; tests of the HTTP surface
/// give it a provisioner of their own. Nothing else in the package builds services.
package struct Application: Sendable {
    package let server: HTTPServer
    /// The listener for `/metrics`, `/health` and `/ready` when `METRICS_PORT` is set.
    package let metricsServer: HTTPServer?
    package let metrics: Metrics
    package let provisioner: any RunnerProvisioner
    /// With in-memory upstreams, what would have been created.
    package let dryRunCluster: DryRunKubernetes?
    /// The configuration in force (the namespace resolved from the cluster connection).
    package let configuration: Configuration
    /// Re-reads `PROFILES_FILE` (also among the services); nil without the file.
    package let profilesReloader: ProfilesReloader?
    /// Services that run beside the servers (the cluster monitor, leader elector, reconciler, memory trimmer).
    private let services: [any Service]
    private let logger: Logger

    /// Where GitHub and Kubernetes are.
    package enum Upstreams: Sendable {
        /// GitHub's REST API and the cluster the environment names (in-cluster service account or `KUBECONFIG`);
        /// in-memory ones when the configuration says `DRY_RUN`.
        case environment([String: String], files: any FileReading)
        /// A given provisioner and no background services: tests of the HTTP surface.
        case provisioner(any RunnerProvisioner)
    }

    /// The service could not be built (an unusable kubeconfig, a port in use); `serve` exits 1 with it.
    package struct StartError: Error, CustomStringConvertible {
        package var description: String
    }

    /// Builds every component and binds the ports (so a taken port fails here, before anything runs).
    ///
    /// - Parameter serverConfiguration: overrides for tests (timeouts, port 0); derived from `configuration` otherwise.
    /// - Parameter metricsServerConfiguration: the same for the `METRICS_PORT` listener.
    package static func build(
        configuration: Configuration,
        upstreams: Upstreams,
        logger: Logger,
        serverConfiguration: HTTPServer.Configuration? = nil,
        metricsServerConfiguration: HTTPServer.Configuration? = nil
    ) throws(StartError) -> Application {
        let metrics = Metrics()
        let provisioning: Provisioning
        switch upstreams {
        case .environment(let environment, let files):
            do {
                provisioning = try Provisioning.make(
                    configuration: configuration,
                    environment: environment,
                    files: files,
                    metrics: metrics,
                    logger: logger
                )
            } catch {
                throw StartError(description: error.description)
            }
        case .provisioner(let provisioner):
            provisioning = Provisioning(provisioner: provisioner, services: [], configuration: configuration)
        }
        let configuration = provisioning.configuration
        var services = provisioning.services
        services.append(
            MemoryTrimmer(releaseFilePages: configuration.releaseCodePages) { metrics.webhookRequestsAnswered }
        )
        do {
            let (server, metricsServer) = try servers(
                configuration: configuration,
                provisioning: provisioning,
                metrics: metrics,
                logger: logger,
                serverConfiguration: serverConfiguration,
                metricsServerConfiguration: metricsServerConfiguration
            )
            return Application(
                server: server,
                metricsServer: metricsServer,
                metrics: metrics,
                provisioner: provisioning.provisioner,
                dryRunCluster: provisioning.dryRunCluster,
                configuration: configuration,
                profilesReloader: provisioning.profilesReloader,
                services: services,
                logger: logger
            )
        } catch {
            throw StartError(description: "\(error)")
        }
    }

    /// The webhook server and, with `METRICS_PORT`, the operations server, routes in place.
    private static func servers(
        configuration: Configuration,
        provisioning: Provisioning,
        metrics: Metrics,
        logger: Logger,
        serverConfiguration: HTTPServer.Configuration?,
        metricsServerConfiguration: HTTPServer.Configuration?
    ) throws(HTTPServerError) -> (HTTPServer, HTTPServer?) {
        let provisioner = provisioning.provisioner
        let findings = provisioning.findings
        var noteRepository: (@Sendable (String, String) -> Void)?
        var signOfLoss: (@Sendable (String, String) -> Void)?
        if let repositories = provisioning.repositories {
            noteRepository = { owner, repo in repositories.note(owner: owner, repo: repo) }
            signOfLoss = { owner, repo in repositories.prioritize(owner: owner, repo: repo, loss: true) }
        }
        var noteHook: (@Sendable (String?, String?, String, String, Int64?) -> Void)?
        if let hooks = provisioning.hooks {
            noteHook = { type, id, owner, repo, repositoryID in
                hooks.remember(targetType: type, hookID: id, owner: owner, repo: repo, repositoryID: repositoryID)
            }
        }
        let deliveryRecovery = provisioning.deliveryRecovery
        let profilesReloader = provisioning.profilesReloader
        let isRedelivery = deliveryRecovery.map { recovery in { @Sendable (id: String) in recovery.redelivered(id) } }
        var secrets = [configuration.webhookSecret]
        if let previous = configuration.previousWebhookSecret { secrets.append(previous) }
        let webhook = WebhookHandler(
            verifier: SignatureVerifier(secrets: secrets),
            matcher: provisioning.profiles ?? RunnerProfileStore(configuration.runnerProfiles),
            deliveries: DeliveryLog(),
            provisioner: provisioner,
            metrics: metrics,
            logger: logger,
            onVerifiedRepository: noteRepository,
            allowList: configuration.allowList,
            onVerifiedInstallation: provisioning.rememberInstallation,
            onSignOfLoss: signOfLoss,
            onVerifiedHook: noteHook,
            isRedelivery: isRedelivery
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
            // What the start-up check found about the GitHub credentials, one line each.
            // And the hooks whose failed deliveries cannot be redelivered, and a refused profiles file (the last
            // good profiles serve: still ready).
            let detail =
                findings.all.map { "\n\($0.severity.rawValue): \($0.subject): \($0.message)" }.joined()
                + (deliveryRecovery?.findings ?? []).map { "\nwarning: \($0)" }.joined()
                + (profilesReloader?.problem.map {
                    "\nwarning: PROFILES_FILE refused, the last good profiles serve: \($0)"
                } ?? "")
            switch await provisioner.readiness() {
            case .ready: return .text(200, "ready" + detail)
            case .notReady(let reason): return .text(503, "not ready: \(reason)" + detail)
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
        return (httpServer, metricsServer)
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
