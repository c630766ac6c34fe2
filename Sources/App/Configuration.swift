import GitHub
import Kubernetes
import Logging
import Observability
import Runners
import Support
import Webhook

/// Everything the service is told at start, read once from the environment and validated.
///
/// Every setting is an entry of `Configuration.settings`, which parsing, `--help` and README's table come from.
package struct Configuration: Sendable {
    package var webhookSecret: Secret
    /// Accepted besides `webhookSecret` while a secret rotation is in progress.
    package var previousWebhookSecret: Secret?
    /// Nil only in dry-run mode.
    package var githubToken: Secret?
    package var githubAPIURL: String
    /// Extra CA bundle (PEM file) for GitHub, e.g. a GHES private CA.
    package var githubCAFile: String?
    package var runnerMode: RunnerMode
    package var runnerImage: String
    package var dindImage: String
    package var dindMTU: Int?
    package var namespace: String
    /// Whether `NAMESPACE` was set (otherwise the service account's or kubeconfig's namespace may apply).
    package var namespaceIsExplicit: Bool
    package var labelMatcher: LabelMatcher
    package var listenAddress: String
    package var port: Int
    /// When set, `/metrics`, `/health` and `/ready` are served on this port only, and `PORT` serves `/webhook` only.
    package var metricsPort: Int?
    package var jobTTLSeconds: Int
    package var runnerGroupID: Int
    package var maxBodyBytes: Int
    package var maxConnections: Int
    /// Connections each upstream client (GitHub, Kubernetes) may hold at once; not a key: derived at start from
    /// the descriptor limit (`StartupChecks`), so both clients and every client connection fit under it.
    package var upstreamConnections = 256
    /// Request bodies received and not yet answered, over all connections together (heads get an eighth more).
    package var maxInflightBodyBytes: Int
    package var logLevel: Logger.Level
    package var logFormat: LogFormat
    package var dryRun: Bool
    /// Whether a kubeconfig `http://` server may be sent a token or client certificate (test setups only).
    package var allowCleartextCredentials: Bool
    /// How often the leader looks for queued jobs without a runner (doubling while idle, up to 5 minutes).
    package var reconcileInterval: Duration
    /// How old a queued job must be before the reconciler provisions it (so it never races the webhook path).
    package var reconcileGrace: Duration
    /// A runner with nothing to do for this long, that no queued job can use, is removed.
    package var runnerIdleTimeout: Duration
    /// Repositories to reconcile even before a delivery from them was seen.
    package var repositories: [RepositoryRegistry.Repository]
    /// GitHub requests the reconciler leaves for webhook deliveries.
    package var rateLimitReserve: Int
    /// This replica's name in the leader Lease (`POD_NAME`, else `HOSTNAME`).
    package var identity: String
    /// `RUNNER_OWNER_LABEL` when set; else `ownerLabel` derives it from the namespace.
    package var runnerOwnerLabel: String? = nil
    /// Whether the memory trimmer unmaps the clean pages of the binary's and libraries' read-only mappings while the
    /// service is quiet (`MemoryTrimmer`): lower idle RSS, a few minor faults on the next delivery.
    package var releaseCodePages = false
    /// `GITHUB_TOKENS`: a token per owner (`GITHUB_TOKEN`, when set, serves every other owner).
    package var githubOwnerTokens: [GitHubTokens.OwnerToken] = []
    /// `GITHUB_APP_ID` and `GITHUB_APP_PRIVATE_KEY`: a GitHub App instead of tokens.
    package var githubAppID: String? = nil
    package var githubAppPrivateKey: Secret? = nil
    /// Where runners register: the repository (the original design) or its organization.
    package var runnerScope: RunnerScope = .repository
    /// `RUNNER_GROUP`: the organization runner group by name (resolved to its id once per organization).
    package var runnerGroup: String? = nil
    /// `ALLOWED_OWNERS` and `ALLOWED_REPOSITORIES` (globs).
    package var allowedOwners: [String] = []
    package var allowedRepositories: [String] = []
    /// Whose signed deliveries are served: the two lists above, validated.
    package var allowList: RepositoryAllowList = .everyone
    /// A private CA for runner pods: a ConfigMap or a Secret, and the key holding the PEM.
    package var runnerCAConfigMap: String? = nil
    package var runnerCASecret: String? = nil
    package var runnerCAKey = "ca.crt"
    /// `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY`, passed to runner pods.
    package var runnerHTTPProxy: Secret? = nil
    package var runnerHTTPSProxy: Secret? = nil
    package var runnerNoProxy: String? = nil
    /// `kubernetes` mode: the runner pods' service account and work volume.
    package var runnerServiceAccount = "kube-actions-runner-hooks"
    package var runnerWorkVolumeSize = "1Gi"
    package var runnerWorkVolumeStorageClass: String? = nil

    /// What `kubernetes` mode's runner pods get.
    package var containerHooks: RunnerJob.ContainerHooks {
        RunnerJob.ContainerHooks(
            serviceAccountName: runnerServiceAccount,
            workVolumeSize: runnerWorkVolumeSize,
            workVolumeStorageClass: runnerWorkVolumeStorageClass
        )
    }

    /// The CA bundle runner pods get, if any.
    package var runnerCABundle: RunnerJob.CABundle? {
        if let name = runnerCAConfigMap { return RunnerJob.CABundle(.configMap(name), key: runnerCAKey) }
        if let name = runnerCASecret { return RunnerJob.CABundle(.secret(name), key: runnerCAKey) }
        return nil
    }

    /// The proxy runner pods get, if any.
    package var runnerProxy: RunnerJob.Proxy? {
        guard runnerHTTPProxy != nil || runnerHTTPSProxy != nil || runnerNoProxy != nil else { return nil }
        return RunnerJob.Proxy(http: runnerHTTPProxy, https: runnerHTTPSProxy, noProxy: runnerNoProxy)
    }

    /// `PROFILES_FILE`, and the profiles it held when the configuration was read.
    package var profilesFile: String? = nil
    package var profileDefinitions: [ProfilesFile.Profile]? = nil
    /// The text those profiles came from (the reloader compares the file with it).
    package var profilesText: String? = nil

    /// The runner Job settings of the environment: the environment's own profile, and what a file's profiles
    /// start from.
    package var runnerSettings: RunnerJob.Settings { RunnerJob.Settings(self) }

    /// The profiles in force: the file's, or one made of the environment (`LABEL_MATCHERS` and the settings).
    package var runnerProfiles: RunnerProfiles {
        runnerProfiles(from: profileDefinitions)
    }

    /// `definitions` (a file's) over the environment's settings, or the environment's own profile when nil.
    package func runnerProfiles(from definitions: [ProfilesFile.Profile]?) -> RunnerProfiles {
        let base = runnerSettings
        guard let definitions else {
            return RunnerProfiles([RunnerProfile(name: nil, matcher: labelMatcher, settings: base)])
        }
        return RunnerProfiles(definitions.map { $0.runnerProfile(base: base) })
    }

    /// GitHub points the reconciler spends in any minute (GET 1, POST/DELETE 5).
    package var reconcilePointsPerMinute = 300
    /// Whether the reconciler redelivers failed `workflow_job` deliveries of the hooks deliveries came through.
    package var redeliverFailedDeliveries = true
    /// Bytes of conditional-request answers kept (URL, ETag and body).
    package var githubETagCacheBytes = GitHubClient.Configuration.defaultETagCacheBytes
    /// JIT configs and runner deletions per credential, a minute and an hour.
    package var contentRequestsPerMinute = 80
    package var contentRequestsPerHour = 500

    /// Whether the service authenticates as a GitHub App (`GITHUB_APP_ID`) rather than with tokens.
    package var usesGitHubApp: Bool { githubAppID != nil }

    /// This deployment's marker: a label of every registration it makes and the `app.kubernetes.io/instance` label
    /// of its Jobs and Secrets. The reapers touch only what carries it. Default `kar-<namespace>`.
    package var ownerLabel: String {
        runnerOwnerLabel ?? Self.defaultOwnerLabel(namespace: namespace)
    }

    /// `kar-<namespace>` (a namespace is a DNS label of at most 63 characters; the marker is cut to 63).
    package static func defaultOwnerLabel(namespace: String) -> String {
        var label = String("kar-\(namespace)".prefix(63))
        while label.hasSuffix("-") { label.removeLast() }
        return label
    }

    package typealias LogFormat = Observability.LogFormat

    /// Defaults and limits that the settings (`Configuration.settings`) share with other parts of the service.
    package enum Defaults {
        package static let namespace = "default"
        package static let maxBodyBytes = 1024 * 1024
        /// The smallest `MAX_BODY_BYTES` accepted.
        package static let smallestMaxBodyBytes = 1024
        /// GitHub caps payloads at 25 MB.
        package static let maxBodyBytesLimit = 25 * 1024 * 1024
        /// Sized for the shipped Deployment's 128 MiB limit (README, "Memory").
        package static let maxInflightBodyBytes = 32 * 1024 * 1024
        /// The largest answer read from GitHub or Kubernetes; a longer one is aborted with an error.
        package static let maxUpstreamAnswerBytes = 16 * 1024 * 1024
        /// Room for one request's head (request line and header section) besides its body.
        package static let largestHeadBytes = 128 * 1024
        package static let serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    }
}
