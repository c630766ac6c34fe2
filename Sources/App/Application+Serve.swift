import Logging
import Observability
import Support

extension Application {
    /// How `serve` ends, as the process's exit status.
    package enum ServeOutcome: Int32, Sendable {
        /// Shut down gracefully (SIGTERM or SIGINT).
        case stopped = 0
        /// The service could not start, or failed while running.
        case failed = 1
        /// The configuration is invalid; nothing was started.
        case invalidConfiguration = 2
    }

    /// `kube-actions-runner serve`: reads the configuration from the environment, builds the application over the
    /// real upstreams and runs it until SIGTERM or SIGINT. Problems go to standard error.
    package static func serve(environment: [String: String]) async -> ServeOutcome {
        var configuration: Configuration
        do {
            configuration = try Configuration(environment: environment)
        } catch {
            ProcessEnvironment.printError("invalid configuration:\n\(error)")
            return .invalidConfiguration
        }
        let (logLevel, logFormat) = (configuration.logLevel, configuration.logFormat)
        let logger = Logger(label: "kube-actions-runner") { label in
            JSONLogHandler(label: label, level: logLevel, format: logFormat)
        }
        StartupChecks.apply(
            to: &configuration,
            descriptorLimit: StartupChecks.raiseDescriptorLimit(),
            files: LocalFiles(),
            logger: logger
        )
        do {
            let app = try Application.build(
                configuration: configuration,
                upstreams: .environment(environment, files: LocalFiles()),
                logger: logger
            )
            try await app.run()
            return .stopped
        } catch {
            ProcessEnvironment.printError("kube-actions-runner: \(error)")
            return .failed
        }
    }
}
