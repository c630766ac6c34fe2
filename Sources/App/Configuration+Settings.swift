import Logging
import Runners
import Support

extension Configuration {
    /// Every environment variable the service is configured by, in README's order: parsing reads them in this order,
    /// `--help` lists them and README's configuration table is rendered from them.
    static let settings: [Setting] = [
        .secret(
            "WEBHOOK_SECRET",
            \.webhookSecret,
            "The webhook's secret; verifies `X-Hub-Signature-256`."
        ),
        .secret(
            "WEBHOOK_SECRET_PREVIOUS",
            \.previousWebhookSecret,
            unset: "(unset)",
            "A second accepted secret while rotating."
        ),
        .secret(
            "GITHUB_TOKEN",
            \.githubToken,
            unset: "(required unless `DRY_RUN`)",
            "Token that may create runners (fine-grained PAT: Administration read/write, Actions read)."
        ),
        .url(
            "GITHUB_API_URL",
            \.githubAPIURL,
            default: "https://api.github.com",
            "GitHub REST API base URL; GHES: `https://HOST/api/v3`."
        ),
        .file(
            "GITHUB_CA_FILE",
            \.githubCAFile,
            unset: "(system CAs)",
            "PEM bundle of CAs to trust for GitHub (GHES with a private CA)."
        ),
        .choice(
            "RUNNER_MODE",
            \.runnerMode,
            default: .dindRootless,
            "How runner pods run and whether they have Docker (README, \"Runner modes\")."
        ),
        .image(
            "RUNNER_IMAGE",
            \.runnerImage,
            default: "ghcr.io/actions/actions-runner:latest",
            "The runner container image."
        ),
        .image(
            "DIND_IMAGE",
            \.dindImage,
            default: "docker:dind",
            "The Docker daemon sidecar image (dind modes)."
        ),
        .integer(
            "DIND_MTU",
            \.dindMTU,
            unset: "(dockerd's default)",
            in: 576...9216,
            "MTU for dockerd's networks; set it below the pod network's MTU (overlays, Cilium)."
        ),
        .custom(
            "NAMESPACE",
            default: .described("the service account's (or kubeconfig context's) namespace, else `default`"),
            "Namespace for runner Jobs: a lowercase DNS label."
        ) { reader, configuration in
            configuration.namespace = reader.namespace("NAMESPACE")
            configuration.namespaceIsExplicit = reader.value("NAMESPACE") != nil
        },
        .documented(
            "KUBECONFIG",
            kind: .file,
            default: .described("`~/.kube/config` outside a cluster"),
            "Kubeconfig to use outside a cluster (current context; token or client certificate)."
        ),
        .custom(
            "LABEL_MATCHERS",
            default: .described("(jobs with `self-hosted`)"),
            "Which jobs to take: `a,b` any of, `a+b` all of, `;` between matchers."
        ) { reader, configuration in
            configuration.labelMatcher = reader.labelMatcher("LABEL_MATCHERS")
        },
        .integer("PORT", \.port, default: 8080, in: 1...65535, "HTTP port."),
        .integer(
            "METRICS_PORT",
            \.metricsPort,
            unset: "(unset: all on `PORT`)",
            in: 1...65535,
            "A second port for `/metrics`, `/health` and `/ready`; `PORT` then serves `/webhook` only, so the"
                + " internet-facing Service exposes nothing else."
        ),
        .text(
            "LISTEN_ADDRESS",
            \.listenAddress,
            default: "0.0.0.0",
            "Address to bind (IPv4 or IPv6 literal)."
        ),
        .integer(
            "JOB_TTL_SECONDS",
            \.jobTTLSeconds,
            default: 300,
            in: 0...Int(Int32.max),
            "`ttlSecondsAfterFinished` of runner Jobs."
        ),
        .integer(
            "RUNNER_GROUP_ID",
            \.runnerGroupID,
            default: 1,
            in: 1...Int(Int32.max),
            "Runner group of the JIT runners (1 = Default)."
        ),
        .integer(
            "MAX_BODY_BYTES",
            \.maxBodyBytes,
            default: Defaults.maxBodyBytes,
            in: Defaults.smallestMaxBodyBytes...Defaults.maxBodyBytesLimit,
            "Largest accepted webhook body (GitHub's cap is 25 MB)."
        ),
        .integer(
            "MAX_CONNECTIONS",
            \.maxConnections,
            default: 4096,
            in: 16...1_000_000,
            "Open connection cap; idle keep-alive connections are closed first, then 503."
        ),
        .integer(
            "MAX_INFLIGHT_BODY_BYTES",
            \.maxInflightBodyBytes,
            default: Defaults.maxInflightBodyBytes,
            in: (Defaults.smallestMaxBodyBytes + Defaults.largestHeadBytes)...(1 << 40),
            "Request bodies held at once over all connections (heads get an eighth more); past it, requests wait or"
                + " get 503 with `Retry-After`. At least `MAX_BODY_BYTES` + \(Defaults.largestHeadBytes)."
        ),
        .choice(
            "LOG_LEVEL",
            \.logLevel,
            default: Logger.Level.info,
            "Least severe level logged."
        ),
        .choice(
            "LOG_FORMAT",
            \.logFormat,
            default: LogFormat.json,
            "Form of log lines; `json` writes one object per line."
        ),
        .boolean(
            "DRY_RUN",
            \.dryRun,
            default: false,
            "Render runner Jobs instead of calling GitHub and Kubernetes; no token needed."
        ),
        .boolean(
            "ALLOW_CLEARTEXT_CREDENTIALS",
            \.allowCleartextCredentials,
            default: false,
            "Let a kubeconfig `http://` server be sent its token or client certificate in cleartext (loopback test"
                + " setups); otherwise the service refuses to start."
        ),
        .boolean(
            "RELEASE_CODE_PAGES",
            \.releaseCodePages,
            default: false,
            "While quiet, unmap the clean pages of the binary's and libraries' code (they stay in the page cache):"
                + " idle RSS about 13 instead of 28 MiB, a few minor faults on the next delivery."
        ),
        .seconds(
            "RECONCILE_INTERVAL",
            \.reconcileInterval,
            default: 60,
            in: 1...3600,
            "Time between the leader's searches for queued jobs without a runner (doubles while idle, up to 300)."
        ),
        .seconds(
            "RECONCILE_GRACE",
            \.reconcileGrace,
            default: 60,
            in: 0...3600,
            "How long a queued job must wait before the reconciler provisions it (the webhook path goes first)."
        ),
        .seconds(
            "RUNNER_IDLE_TIMEOUT",
            \.runnerIdleTimeout,
            default: 600,
            in: 0...86_400,
            "How long a runner may idle (its job cancelled, taken elsewhere or waiting for an approval, and no queued"
                + " job needs it) before it is removed."
        ),
        .custom(
            "REPOSITORIES",
            default: .described("(none)"),
            "`owner/repo` list (separated by commas or spaces) to reconcile besides the repositories deliveries came"
                + " from."
        ) { reader, configuration in
            configuration.repositories = reader.repositories("REPOSITORIES")
        },
        .integer(
            "RATE_LIMIT_RESERVE",
            \.rateLimitReserve,
            default: 500,
            in: 0...1_000_000,
            "GitHub requests per hour the reconciler leaves for webhook deliveries."
        ),
        .custom(
            "POD_NAME",
            default: .described("`HOSTNAME`"),
            "This replica's identity in the leader Lease."
        ) { reader, configuration in
            configuration.identity =
                reader.value("POD_NAME") ?? reader.value("HOSTNAME") ?? "kube-actions-runner-\(randomSuffix())"
        },
        .custom(
            "RUNNER_OWNER_LABEL",
            default: .described("`kar-<namespace>`"),
            "This deployment's marker: a label of every runner it registers and the `app.kubernetes.io/instance`"
                + " label of its Jobs and Secrets. Reapers touch nothing without it; give each deployment that shares"
                + " a repository its own."
        ) { reader, configuration in
            configuration.runnerOwnerLabel = reader.ownerLabel("RUNNER_OWNER_LABEL")
        },
    ]

    /// Rules between settings, checked once every setting is read.
    static func checkRulesBetweenSettings(_ configuration: inout Configuration, _ reader: inout SettingsReader) {
        if let metricsPort = configuration.metricsPort, metricsPort == configuration.port {
            reader.fail("METRICS_PORT", "must differ from PORT (\(configuration.port))")
        }
        // One request of the largest accepted size must always fit.
        let smallestInflight = configuration.maxBodyBytes + Defaults.largestHeadBytes
        if configuration.maxInflightBodyBytes < smallestInflight {
            if let text = reader.value("MAX_INFLIGHT_BODY_BYTES") {
                reader.fail(
                    "MAX_INFLIGHT_BODY_BYTES",
                    "'\(text)' is not a whole number in \(smallestInflight)...\(1 << 40)"
                )
            } else {
                configuration.maxInflightBodyBytes = smallestInflight
            }
        }
        if !configuration.dryRun, configuration.githubToken == nil,
            !reader.reported(about: "GITHUB_TOKEN", "GITHUB_TOKEN_FILE")
        {
            reader.fail("GITHUB_TOKEN", "required (set GITHUB_TOKEN or GITHUB_TOKEN_FILE)")
        }
    }
}
