import Logging
import ServiceLifecycle

/// Chooses and builds the provisioner the configuration asks for, with the services it needs.
public enum Provisioners {
    /// The provisioner, the background services that go with it, and the configuration with the namespace
    /// resolved (`NAMESPACE`, else the service account's, else the kubeconfig context's, else `default`).
    public struct Provisioning: Sendable {
        public var provisioner: any RunnerProvisioner
        public var services: [any Service]
        public var configuration: Configuration
        /// In dry-run mode, what would have been created.
        public var dryRunCluster: DryRunKubernetes? = nil
    }

    /// Why the service cannot provision (a kubeconfig it cannot use, say); main exits 1 with it.
    public struct Unavailable: Error, CustomStringConvertible {
        public var description: String
    }

    public static func make(
        configuration: Configuration,
        environment: [String: String],
        files: some FileReading = LocalFiles(),
        metrics: Metrics,
        logger: Logger
    ) throws(Unavailable) -> Provisioning {
        var configuration = configuration
        if configuration.dryRun {
            let kubernetes = DryRunKubernetes(logger: logger)
            let monitor = ClusterMonitor(
                kubernetes: kubernetes,
                namespace: configuration.namespace,
                metrics: metrics,
                logger: logger
            )
            let provisioner = JITRunnerProvisioner(
                github: DryRunGitHub(),
                kubernetes: kubernetes,
                settings: RunnerJob.Settings(configuration),
                runnerGroupID: configuration.runnerGroupID,
                monitor: monitor,
                logger: logger
            )
            logger.notice("dry run: nothing is sent to GitHub or Kubernetes")
            return Provisioning(
                provisioner: provisioner,
                services: [monitor],
                configuration: configuration,
                dryRunCluster: kubernetes
            )
        }
        guard let token = configuration.githubToken else {
            throw Unavailable(description: "GITHUB_TOKEN is required unless DRY_RUN=true")
        }
        let connection: KubernetesConnection
        do {
            connection = try KubernetesConnection.load(environment: environment, files: files)
        } catch {
            throw Unavailable(description: error.description)
        }
        if !configuration.namespaceIsExplicit, connection.source != "in-cluster service account",
            let namespace = connection.namespace
        {
            configuration.namespace = namespace
        }
        if connection.tls.insecureSkipVerify {
            logger.warning("Kubernetes API certificate is not verified (insecure-skip-tls-verify)")
        }
        logger.info(
            "provisioning runners",
            metadata: [
                "kubernetes": "\(connection.server)", "source": "\(connection.source)",
                "namespace": "\(configuration.namespace)",
                "github": "\(configuration.githubAPIURL)", "mode": "\(configuration.runnerMode)",
            ]
        )

        let github = GitHubClient(
            configuration: .init(baseURL: configuration.githubAPIURL, token: token),
            transport: CurlTransport(configuration: .init(tls: TLSConfiguration(caFile: configuration.githubCAFile))),
            metrics: metrics,
            logger: logger
        )
        let kubernetes = KubernetesClient(
            connection: connection,
            transport: CurlTransport(configuration: .init(tls: connection.tls)),
            files: files
        )
        let monitor = ClusterMonitor(
            kubernetes: kubernetes,
            namespace: configuration.namespace,
            metrics: metrics,
            logger: logger
        )
        let provisioner = JITRunnerProvisioner(
            github: github,
            kubernetes: kubernetes,
            settings: RunnerJob.Settings(configuration),
            runnerGroupID: configuration.runnerGroupID,
            monitor: monitor,
            logger: logger
        )
        return Provisioning(provisioner: provisioner, services: [monitor], configuration: configuration)
    }
}
