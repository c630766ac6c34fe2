import GitHub
import HTTPClient
import Kubernetes
import Logging
import Observability
import Runners
import ServiceLifecycle
import Support

/// The provisioner the configuration asks for over its upstreams, the background services that go with it, and the
/// configuration with the namespace resolved (`NAMESPACE`, else the service account's, else the kubeconfig
/// context's, else `default`). Part of the composition root (`Application`).
struct Provisioning: Sendable {
    var provisioner: any RunnerProvisioner
    var services: [any Service]
    var configuration: Configuration
    /// The repositories the reconciler watches; the webhook handler adds to it.
    var repositories: RepositoryRegistry? = nil
    /// The hooks deliveries came through, with `REDELIVER_FAILED_DELIVERIES`; the webhook handler adds to it.
    var hooks: HookRegistry? = nil
    /// The redelivery of failed deliveries the reconciler runs; its findings go to `/ready`.
    var deliveryRecovery: DeliveryRecovery? = nil
    /// With in-memory upstreams, what would have been created.
    var dryRunCluster: DryRunKubernetes? = nil
    /// Tells a GitHub App's credentials the installation a verified delivery names.
    var rememberInstallation: (@Sendable (_ owner: String, _ installationID: Int64) -> Void)? = nil
    /// What the start-up credential check found (`/ready` lists it).
    var findings = CredentialFindings()
    /// The runner profiles in force (the environment's own, or `PROFILES_FILE`'s).
    var profiles: RunnerProfileStore? = nil
    /// Re-reads `PROFILES_FILE`; nil without one.
    var profilesReloader: ProfilesReloader? = nil

    /// Why the service cannot provision (a kubeconfig it cannot use, say).
    struct Unavailable: Error, CustomStringConvertible {
        var description: String
    }

    static func make(
        configuration: Configuration,
        environment: [String: String],
        files: any FileReading,
        metrics: Metrics,
        logger: Logger
    ) throws(Unavailable) -> Provisioning {
        var configuration = configuration
        if configuration.dryRun {
            let kubernetes = DryRunKubernetes(logger: logger)
            logger.notice("dry run: nothing is sent to GitHub or Kubernetes")
            var provisioning = assemble(
                configuration: configuration,
                github: DryRunGitHub(),
                rateLimitRemaining: { nil },
                kubernetes: kubernetes,
                metrics: metrics,
                logger: logger
            )
            provisioning.dryRunCluster = kubernetes
            provisioning.watchProfiles(files: files, metrics: metrics, logger: logger)
            return provisioning
        }
        let connection: KubernetesConnection
        (connection, configuration) = try connect(configuration: configuration, environment: environment, files: files)
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

        let githubTransport = CurlTransport(
            configuration: .bounded(
                tls: TLSConfiguration(caFile: configuration.githubCAFile),
                connections: configuration.upstreamConnections
            )
        )
        let credentials: any GitHubCredentials
        if let appID = configuration.githubAppID, let key = configuration.githubAppPrivateKey {
            do {
                credentials = try GitHubAppCredentials(
                    configuration: .init(appID: appID, privateKey: key, baseURL: configuration.githubAPIURL),
                    transport: githubTransport,
                    metrics: metrics,
                    logger: logger
                )
            } catch {
                throw Unavailable(description: error.description)
            }
        } else {
            credentials = GitHubTokens(
                defaultToken: configuration.githubToken,
                ownerTokens: configuration.githubOwnerTokens
            )
        }
        let github = GitHubClient(
            configuration: .init(
                baseURL: configuration.githubAPIURL,
                credentials: credentials,
                etagCacheBytes: configuration.githubETagCacheBytes
            ),
            transport: githubTransport,
            metrics: metrics,
            logger: logger
        )
        let kubernetes = KubernetesClient(
            connection: connection,
            transport: CurlTransport(
                configuration: .bounded(tls: connection.tls, connections: configuration.upstreamConnections)
            ),
            files: files
        )
        var provisioning = assemble(
            configuration: configuration,
            github: github,
            rateLimitRemaining: { github.rateLimitRemaining },
            kubernetes: kubernetes,
            metrics: metrics,
            logger: logger
        )
        provisioning.rememberInstallation = { owner, id in credentials.remember(installationID: id, for: owner) }
        provisioning.watchProfiles(files: files, metrics: metrics, logger: logger)
        provisioning.services.append(
            CredentialCheck(
                github: github,
                configuration: configuration,
                findings: provisioning.findings,
                logger: logger
            )
        )
        return provisioning
    }

    /// The cluster the environment names (in-cluster service account or `KUBECONFIG`), refused when its credentials
    /// would cross the network in cleartext, and the configuration with the namespace it resolves. Reads files only:
    /// `check-config` and `render` call it too.
    static func connect(
        configuration: Configuration,
        environment: [String: String],
        files: any FileReading
    ) throws(Unavailable) -> (KubernetesConnection, Configuration) {
        var configuration = configuration
        let connection: KubernetesConnection
        do {
            connection = try KubernetesConnection.load(environment: environment, files: files)
        } catch {
            throw Unavailable(description: error.description)
        }
        let hasCredentials =
            connection.credentials != .none || connection.tls.clientCertificate != nil
            || connection.tls.clientCertificateFile != nil
        if connection.server.lowercased().hasPrefix("http://"), hasCredentials, !configuration.allowCleartextCredentials
        {
            throw Unavailable(
                description:
                    "Kubernetes server \(connection.server) is plain http://, so its credentials would cross the network in cleartext; use an https:// server, or set ALLOW_CLEARTEXT_CREDENTIALS=true for a loopback test setup"
            )
        }
        if !configuration.namespaceIsExplicit, connection.source != "in-cluster service account",
            let namespace = connection.namespace
        {
            configuration.namespace = namespace
        }
        return (connection, configuration)
    }

    /// The provisioner and its background services over the given GitHub and Kubernetes.
    static func assemble(
        configuration: Configuration,
        github: any GitHubAPI,
        rateLimitRemaining: @escaping @Sendable () -> Int64?,
        kubernetes: any KubernetesAPI,
        metrics: Metrics,
        logger: Logger
    ) -> Provisioning {
        let namespace = configuration.namespace
        // GitHub's content-creating limits hold per credential: the key names the credential serving an owner.
        // In a dry run nothing reaches GitHub, so nothing is paced.
        let contentBudget =
            configuration.dryRun
            ? nil
            : ContentBudget(
                .init(perMinute: configuration.contentRequestsPerMinute, perHour: configuration.contentRequestsPerHour)
            )
        let contentKey = Self.contentKey(configuration)
        let monitor = ClusterMonitor(
            kubernetes: kubernetes,
            namespace: namespace,
            metrics: metrics,
            logger: logger,
            selector: RunnerJob.selector(ownerLabel: configuration.ownerLabel)
        )
        let profiles = RunnerProfileStore(configuration.runnerProfiles)
        let provisioner = JITRunnerProvisioner(
            github: github,
            kubernetes: kubernetes,
            settings: configuration.runnerSettings,
            runnerGroupID: configuration.runnerGroupID,
            monitor: monitor,
            logger: logger,
            scope: configuration.runnerScope,
            runnerGroup: configuration.runnerGroup,
            contentBudget: contentBudget,
            contentKey: contentKey,
            // Without a file, exactly the environment's behaviour: no profile to choose.
            profiles: configuration.profilesFile == nil ? nil : profiles
        )
        let repositories = RepositoryRegistry(
            kubernetes: kubernetes,
            namespace: namespace,
            configured: configuration.repositories,
            logger: logger
        )
        let elector = LeaderElector(
            kubernetes: kubernetes,
            namespace: namespace,
            identity: configuration.identity,
            metrics: metrics,
            logger: logger
        )
        var reconcile = Reconciler.Configuration()
        reconcile.interval = configuration.reconcileInterval
        reconcile.maxInterval = max(configuration.reconcileInterval, .seconds(300))
        reconcile.reserve = Int64(configuration.rateLimitReserve)
        reconcile.grace = configuration.reconcileGrace
        reconcile.idleTimeout = configuration.runnerIdleTimeout
        reconcile.pointsPerMinute = configuration.reconcilePointsPerMinute
        reconcile.reapsHookPods = configuration.runnerMode.usesContainerHooks
        // Nothing is delivered to a dry run through GitHub: nothing to redeliver.
        let hooks = configuration.redeliverFailedDeliveries && !configuration.dryRun ? HookRegistry() : nil
        let deliveryRecovery = hooks.map { hooks in
            DeliveryRecovery(github: github, hooks: hooks, metrics: metrics, logger: logger) { owner, repo in
                repositories.prioritize(owner: owner, repo: repo, loss: true)
            }
        }
        let reconciler = Reconciler(
            configuration: reconcile,
            github: github,
            rateLimitRemaining: rateLimitRemaining,
            kubernetes: kubernetes,
            namespace: namespace,
            ownerLabel: configuration.ownerLabel,
            provisioner: provisioner,
            matcher: profiles,
            repositories: repositories,
            isLeader: { elector.isLeader },
            scope: configuration.runnerScope,
            contentBudget: contentBudget,
            contentKey: contentKey,
            deliveryRecovery: deliveryRecovery,
            metrics: metrics,
            logger: logger
        )
        // Their list decoding must not take the cooperative pool from deliveries (BackgroundExecutor).
        let backgroundLoops: [any Service] = [monitor, elector, reconciler]
        return Provisioning(
            provisioner: provisioner,
            services: backgroundLoops.map { BackgroundService(base: $0, executor: .shared) },
            configuration: configuration,
            repositories: repositories,
            hooks: hooks,
            deliveryRecovery: deliveryRecovery,
            profiles: profiles
        )
    }

    /// With `PROFILES_FILE`, a reloader among the services, putting changes of the file in force.
    mutating func watchProfiles(files: any FileReading, metrics: Metrics, logger: Logger) {
        guard let path = configuration.profilesFile, let profiles else { return }
        let configuration = self.configuration
        let reloader = ProfilesReloader(
            path: path,
            files: files,
            store: profiles,
            initialText: configuration.profilesText,
            metrics: metrics,
            logger: logger
        ) { definitions in configuration.runnerProfiles(from: definitions) }
        profilesReloader = reloader
        services.append(reloader)
    }
}

extension Provisioning {
    /// The credential that serves an owner, as a key of the content budget: the App's installation (one per
    /// account), the owner's own token, or the default token (`""`).
    static func contentKey(_ configuration: Configuration) -> @Sendable (String) -> String {
        if configuration.usesGitHubApp { return { $0.lowercased() } }
        let owners = Set(configuration.githubOwnerTokens.map { $0.owner.lowercased() })
        return { owner in owners.contains(owner.lowercased()) ? owner.lowercased() : "" }
    }
}

extension CurlTransport.Configuration {
    /// A client's transport that holds at most `connections` connections at once (and caches as many).
    static func bounded(tls: TLSConfiguration, connections: Int) -> Self {
        var configuration = Self(tls: tls)
        configuration.maxCachedConnections = connections
        configuration.maxTotalConnections = connections
        return configuration
    }
}
