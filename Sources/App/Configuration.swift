import Kubernetes
import Logging
import Observability
import Runners
import Support

/// Everything the service is told at start, read once from the environment and validated.
///
/// Every key is documented in `Configuration.keys` (README's table is checked against it).
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

    /// Defaults, for values the environment leaves out.
    package enum Defaults {
        package static let githubAPIURL = "https://api.github.com"
        package static let runnerMode = RunnerMode.dindRootless
        package static let runnerImage = "ghcr.io/actions/actions-runner:latest"
        package static let dindImage = "docker:dind"
        package static let namespace = "default"
        package static let listenAddress = "0.0.0.0"
        package static let port = 8080
        package static let jobTTLSeconds = 300
        package static let runnerGroupID = 1
        package static let maxBodyBytes = 1024 * 1024
        /// GitHub caps payloads at 25 MB.
        package static let maxBodyBytesLimit = 25 * 1024 * 1024
        package static let maxConnections = 4096
        /// Sized for the shipped Deployment's 128 MiB limit (README, "Memory").
        package static let maxInflightBodyBytes = 32 * 1024 * 1024
        /// The largest answer read from GitHub or Kubernetes; a longer one is aborted with an error.
        package static let maxUpstreamAnswerBytes = 16 * 1024 * 1024
        /// Room for one request's head (request line and header section) besides its body.
        package static let largestHeadBytes = 128 * 1024
        package static let serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    }

    /// A documented configuration key, for README's table and `--help`.
    package struct Key: Sendable {
        package var name: String
        package var defaultValue: String
        package var isSecret: Bool
        package var summary: String
    }

    /// Every environment variable the service reads.
    package static let keys: [Key] = [
        Key(
            name: "WEBHOOK_SECRET",
            defaultValue: "(required)",
            isSecret: true,
            summary: "The webhook's secret; verifies `X-Hub-Signature-256`. Or `WEBHOOK_SECRET_FILE`."
        ),
        Key(
            name: "WEBHOOK_SECRET_PREVIOUS",
            defaultValue: "(unset)",
            isSecret: true,
            summary: "A second accepted secret while rotating. Or `WEBHOOK_SECRET_PREVIOUS_FILE`."
        ),
        Key(
            name: "GITHUB_TOKEN",
            defaultValue: "(required unless DRY_RUN)",
            isSecret: true,
            summary:
                "Token that may create runners (fine-grained PAT: Administration read/write, Actions read). Or `GITHUB_TOKEN_FILE`."
        ),
        Key(
            name: "GITHUB_API_URL",
            defaultValue: Defaults.githubAPIURL,
            isSecret: false,
            summary: "GitHub REST API base URL; GHES: `https://HOST/api/v3`."
        ),
        Key(
            name: "RUNNER_MODE",
            defaultValue: Defaults.runnerMode.rawValue,
            isSecret: false,
            summary: "`standard`, `userns`, `dind` or `dind-rootless`."
        ),
        Key(
            name: "RUNNER_IMAGE",
            defaultValue: Defaults.runnerImage,
            isSecret: false,
            summary: "The runner container image."
        ),
        Key(
            name: "DIND_IMAGE",
            defaultValue: Defaults.dindImage,
            isSecret: false,
            summary: "The Docker daemon sidecar image (dind modes)."
        ),
        Key(
            name: "DIND_MTU",
            defaultValue: "(dockerd's default)",
            isSecret: false,
            summary: "MTU for dockerd's networks; set it below the pod network's MTU (overlays, Cilium)."
        ),
        Key(
            name: "NAMESPACE",
            defaultValue: "the service account's namespace, else `default`",
            isSecret: false,
            summary: "Namespace for runner Jobs."
        ),
        Key(
            name: "LABEL_MATCHERS",
            defaultValue: "(jobs with `self-hosted`)",
            isSecret: false,
            summary: "Which jobs to take: `a,b` any of, `a+b` all of, `;` between matchers."
        ),
        Key(name: "PORT", defaultValue: "\(Defaults.port)", isSecret: false, summary: "HTTP port."),
        Key(
            name: "METRICS_PORT",
            defaultValue: "(unset: all on `PORT`)",
            isSecret: false,
            summary:
                "A second port for `/metrics`, `/health` and `/ready`; `PORT` then serves `/webhook` only, so the internet-facing Service exposes nothing else."
        ),
        Key(
            name: "LISTEN_ADDRESS",
            defaultValue: Defaults.listenAddress,
            isSecret: false,
            summary: "Address to bind (IPv4 or IPv6 literal)."
        ),
        Key(
            name: "JOB_TTL_SECONDS",
            defaultValue: "\(Defaults.jobTTLSeconds)",
            isSecret: false,
            summary: "`ttlSecondsAfterFinished` of runner Jobs."
        ),
        Key(
            name: "RUNNER_GROUP_ID",
            defaultValue: "\(Defaults.runnerGroupID)",
            isSecret: false,
            summary: "Runner group of the JIT runners (1 = Default)."
        ),
        Key(
            name: "MAX_BODY_BYTES",
            defaultValue: "\(Defaults.maxBodyBytes)",
            isSecret: false,
            summary: "Largest accepted webhook body, up to 26214400 (GitHub's 25 MB cap)."
        ),
        Key(
            name: "MAX_CONNECTIONS",
            defaultValue: "\(Defaults.maxConnections)",
            isSecret: false,
            summary: "Open connection cap; idle keep-alive connections are closed first, then 503."
        ),
        Key(
            name: "MAX_INFLIGHT_BODY_BYTES",
            defaultValue: "\(Defaults.maxInflightBodyBytes)",
            isSecret: false,
            summary:
                "Request bodies held at once over all connections (heads get an eighth more); past it, requests wait or get 503 with `Retry-After`. At least `MAX_BODY_BYTES` + 131072."
        ),
        Key(
            name: "LOG_LEVEL",
            defaultValue: "info",
            isSecret: false,
            summary: "`trace`, `debug`, `info`, `notice`, `warning`, `error` or `critical`."
        ),
        Key(
            name: "LOG_FORMAT",
            defaultValue: "json",
            isSecret: false,
            summary: "`json` (one object per line) or `text`."
        ),
        Key(
            name: "DRY_RUN",
            defaultValue: "false",
            isSecret: false,
            summary: "Render runner Jobs instead of calling GitHub and Kubernetes; no token needed."
        ),
        Key(
            name: "RUNNER_OWNER_LABEL",
            defaultValue: "`kar-<namespace>`",
            isSecret: false,
            summary:
                "This deployment's marker: a label of every runner it registers and the `app.kubernetes.io/instance` label of its Jobs and Secrets. Reapers touch nothing without it; give each deployment that shares a repository its own."
        ),
        Key(
            name: "GITHUB_CA_FILE",
            defaultValue: "(system CAs)",
            isSecret: false,
            summary: "PEM bundle of CAs to trust for GitHub (GHES with a private CA)."
        ),
        Key(
            name: "KUBECONFIG",
            defaultValue: "`~/.kube/config` outside a cluster",
            isSecret: false,
            summary: "Kubeconfig to use outside a cluster (current context; token or client certificate)."
        ),
        Key(
            name: "RECONCILE_INTERVAL",
            defaultValue: "60",
            isSecret: false,
            summary:
                "Seconds between the leader's searches for queued jobs without a runner (doubles while idle, up to 300)."
        ),
        Key(
            name: "RECONCILE_GRACE",
            defaultValue: "60",
            isSecret: false,
            summary: "Seconds a queued job must wait before the reconciler provisions it (the webhook path goes first)."
        ),
        Key(
            name: "RUNNER_IDLE_TIMEOUT",
            defaultValue: "600",
            isSecret: false,
            summary: "Seconds a runner no queued job needs may idle before it is removed."
        ),
        Key(
            name: "REPOSITORIES",
            defaultValue: "(none)",
            isSecret: false,
            summary: "`owner/repo` list to reconcile besides the repositories deliveries came from."
        ),
        Key(
            name: "RATE_LIMIT_RESERVE",
            defaultValue: "500",
            isSecret: false,
            summary: "GitHub requests per hour the reconciler leaves for webhook deliveries."
        ),
        Key(
            name: "POD_NAME",
            defaultValue: "`HOSTNAME`",
            isSecret: false,
            summary: "This replica's identity in the leader Lease."
        ),
        Key(
            name: "ALLOW_CLEARTEXT_CREDENTIALS",
            defaultValue: "false",
            isSecret: false,
            summary:
                "Let a kubeconfig `http://` server be sent its token or client certificate in cleartext (loopback test setups); otherwise the service refuses to start."
        ),
        Key(
            name: "RELEASE_CODE_PAGES",
            defaultValue: "false",
            isSecret: false,
            summary:
                "While quiet, unmap the clean pages of the binary's and libraries' code (they stay in the page cache): idle RSS about 13 instead of 28 MiB, a few minor faults on the next delivery."
        ),
    ]
}
