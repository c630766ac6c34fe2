import GitHub
import Logging
import Runners
import Support
import Webhook

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
            unset: "(required unless `DRY_RUN`, `GITHUB_TOKENS` or a GitHub App)",
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
        .custom(
            "GITHUB_TOKENS",
            kind: .secret,
            default: .described("(unset)"),
            "A token per owner: a JSON array `[{\"owner\":\"octo-org\",\"token\":\"...\"}]`; `GITHUB_TOKEN` serves"
                + " other owners."
        ) { reader, configuration in
            guard let text = reader.secret("GITHUB_TOKENS", required: false) else { return }
            do {
                configuration.githubOwnerTokens = try GitHubTokens.parse(text.value)
            } catch let error as GitHubCredentialsError {
                reader.fail("GITHUB_TOKENS", error.description)
            } catch {
                reader.fail("GITHUB_TOKENS", "cannot be read")
            }
        },
        .text(
            "GITHUB_APP_ID",
            \.githubAppID,
            unset: "(unset: tokens)",
            "A GitHub App's id (or client id) to authenticate as, with `GITHUB_APP_PRIVATE_KEY`, instead of tokens."
        ),
        .custom(
            "GITHUB_APP_PRIVATE_KEY",
            kind: .secret,
            default: .described("(unset)"),
            "The App's private key, PEM (PKCS#1 as GitHub hands it out, or PKCS#8); in the variable itself, line"
                + " breaks may be written `\\n`."
        ) { reader, configuration in
            configuration.githubAppPrivateKey = reader.secret(
                "GITHUB_APP_PRIVATE_KEY",
                required: false,
                multiline: true
            )
        },
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
        .custom(
            "PROFILES_FILE",
            kind: .file,
            default: .described("(one profile: this table's settings)"),
            "YAML file of runner profiles (README, \"Runner profiles\"): each with its own label matcher, runner labels,"
                + " mode, images and pod settings; the first that takes a job serves it. Re-read when it changes."
        ) { reader, configuration in
            configuration.profilesFile = reader.existingFile("PROFILES_FILE")
        },
        .custom(
            "ALLOWED_OWNERS",
            default: .described("(every owner)"),
            "Comma-separated globs (`*`, `?`; case-insensitive) of the owners whose jobs run here; a signed delivery"
                + " from any other is answered 403."
        ) { reader, configuration in
            configuration.allowedOwners = reader.list("ALLOWED_OWNERS")
        },
        .custom(
            "ALLOWED_REPOSITORIES",
            default: .described("(every repository)"),
            "Comma-separated `owner/repo` globs of the repositories whose jobs run here (with `ALLOWED_OWNERS`: either"
                + " allows)."
        ) { reader, configuration in
            configuration.allowedRepositories = reader.list("ALLOWED_REPOSITORIES")
        },
        .text(
            "RUNNER_CA_CONFIGMAP",
            \.runnerCAConfigMap,
            unset: "(unset: the image's CAs)",
            "ConfigMap with a PEM CA runner pods must trust (GHES with a private CA, a TLS-inspecting proxy)."
        ),
        .text(
            "RUNNER_CA_SECRET",
            \.runnerCASecret,
            unset: "(unset)",
            "The same from a Secret (one of the two)."
        ),
        .text(
            "RUNNER_CA_KEY",
            \.runnerCAKey,
            default: "ca.crt",
            "The key of that ConfigMap or Secret holding the PEM."
        ),
        .secret(
            "HTTPS_PROXY",
            \.runnerHTTPSProxy,
            unset: "(unset)",
            "Proxy for runner pods (with `HTTP_PROXY` and `NO_PROXY`; both spellings reach the runner and dockerd)."
                + " The service's own libcurl calls use them too: put the Kubernetes API server in `NO_PROXY`."
        ),
        .secret(
            "HTTP_PROXY",
            \.runnerHTTPProxy,
            unset: "(unset)",
            "Proxy for plain-http traffic of runner pods."
        ),
        .text(
            "NO_PROXY",
            \.runnerNoProxy,
            unset: "(unset)",
            "Hosts runner pods reach without the proxy."
        ),
        .custom(
            "RUNNER_SERVICE_ACCOUNT",
            default: .value("kube-actions-runner-hooks"),
            "`kubernetes` mode: the runner pods' service account, whose token the container hooks use"
                + " (`kubernetes/container-hooks.yaml`)."
        ) { reader, configuration in
            if let name = reader.objectName("RUNNER_SERVICE_ACCOUNT") {
                configuration.runnerServiceAccount = name
            }
        },
        .custom(
            "RUNNER_WORK_VOLUME_SIZE",
            default: .value("1Gi"),
            "`kubernetes` mode: the size of the work volume claimed for each runner pod and shared with the pods"
                + " of its job's containers."
        ) { reader, configuration in
            if let size = reader.quantity("RUNNER_WORK_VOLUME_SIZE") {
                configuration.runnerWorkVolumeSize = size
            }
        },
        .custom(
            "RUNNER_WORK_VOLUME_STORAGE_CLASS",
            default: .described("(the cluster's default)"),
            "`kubernetes` mode: the work volume's storage class."
        ) { reader, configuration in
            configuration.runnerWorkVolumeStorageClass = reader.objectName("RUNNER_WORK_VOLUME_STORAGE_CLASS")
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
        .choice(
            "RUNNER_SCOPE",
            \.runnerScope,
            default: .repository,
            "Where runners register: `repo` (the job's repository) or `org` (its organization; README, \"GitHub"
                + " access\")."
        ),
        .text(
            "RUNNER_GROUP",
            \.runnerGroup,
            unset: "(unset: `RUNNER_GROUP_ID`)",
            "Organization runner group by name, resolved to its id (`RUNNER_SCOPE=org` only)."
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
            "RECONCILE_POINTS_PER_MINUTE",
            \.reconcilePointsPerMinute,
            default: 300,
            in: 10...100_000,
            "GitHub points the reconciler spends in any minute (a GET 1, a POST or DELETE 5); GitHub's secondary limit"
                + " is about 900 a minute per credential for everything, so the rest stays with deliveries. A visit"
                + " of a quiet repository costs 2: with a thousand repositories, 600 finds a lost job by polling within"
                + " about 5 minutes, 300 within about 11."
        ),
        .boolean(
            "REDELIVER_FAILED_DELIVERIES",
            \.redeliverFailedDeliveries,
            default: true,
            "Each reconciler cycle, list the recent deliveries of the hooks deliveries came through and ask GitHub to"
                + " redeliver failed `workflow_job` ones (once each); needs the Webhooks permission on a repository's or"
                + " organization's hook (read to list, write to redeliver); an App's own hook is read with its JWT."
                + " Polling the jobs lists stays the fallback."
        ),
        .integer(
            "CONTENT_REQUESTS_PER_MINUTE",
            \.contentRequestsPerMinute,
            default: 80,
            in: 1...10_000,
            "JIT configs and runner deletions per credential per minute (GitHub's content-creating limit); a"
                + " delivery over it is answered 202 `deferred` and the reconciler provisions it later."
        ),
        .integer(
            "CONTENT_REQUESTS_PER_HOUR",
            \.contentRequestsPerHour,
            default: 500,
            in: 1...100_000,
            "The same, per hour."
        ),
        .integer(
            "GITHUB_ETAG_CACHE_BYTES",
            \.githubETagCacheBytes,
            default: GitHubClient.Configuration.defaultETagCacheBytes,
            in: 0...(1 << 30),
            "Bytes of GitHub answers kept for conditional requests (a 304 costs no rate limit); least recently used"
                + " first out."
        ),
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
        if let path = configuration.profilesFile {
            if reader.value("LABEL_MATCHERS") != nil {
                reader.fail("LABEL_MATCHERS", "unset it with PROFILES_FILE: each profile's `match` decides")
            }
            do throws(ProfilesFile.Problems) {
                (configuration.profileDefinitions, configuration.profilesText) = try ProfilesFile.read(
                    path,
                    files: reader.files
                )
            } catch {
                for problem in error.problems { reader.fail("PROFILES_FILE", "\(path): \(problem)") }
            }
        }
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
        let app = configuration.githubAppID != nil || configuration.githubAppPrivateKey != nil
        if app, configuration.githubAppID == nil {
            reader.fail("GITHUB_APP_ID", "required with GITHUB_APP_PRIVATE_KEY")
        }
        if app, configuration.githubAppPrivateKey == nil,
            !reader.reported(about: "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_PRIVATE_KEY_FILE")
        {
            reader.fail("GITHUB_APP_PRIVATE_KEY", "required with GITHUB_APP_ID (or GITHUB_APP_PRIVATE_KEY_FILE)")
        }
        if app, configuration.githubToken != nil || !configuration.githubOwnerTokens.isEmpty {
            reader.fail("GITHUB_APP_ID", "a GitHub App replaces tokens: unset GITHUB_TOKEN and GITHUB_TOKENS")
        }
        if !app, !configuration.dryRun, configuration.githubToken == nil, configuration.githubOwnerTokens.isEmpty,
            !reader.reported(about: "GITHUB_TOKEN", "GITHUB_TOKEN_FILE", "GITHUB_TOKENS", "GITHUB_TOKENS_FILE")
        {
            reader.fail(
                "GITHUB_TOKEN",
                "required (set GITHUB_TOKEN or GITHUB_TOKEN_FILE, GITHUB_TOKENS, or a GitHub App's GITHUB_APP_ID)"
            )
        }
        do {
            configuration.allowList = try RepositoryAllowList(
                owners: configuration.allowedOwners,
                repositories: configuration.allowedRepositories
            )
        } catch {
            reader.fail(error.setting, error.description)
        }
        if configuration.runnerCAConfigMap != nil, configuration.runnerCASecret != nil {
            reader.fail("RUNNER_CA_CONFIGMAP", "set either RUNNER_CA_CONFIGMAP or RUNNER_CA_SECRET, not both")
        }
        if configuration.runnerGroup != nil {
            if configuration.runnerScope != .organization {
                reader.fail("RUNNER_GROUP", "runner groups are an organization's: set RUNNER_SCOPE=org")
            }
            if reader.value("RUNNER_GROUP_ID") != nil {
                reader.fail("RUNNER_GROUP", "set either RUNNER_GROUP or RUNNER_GROUP_ID, not both")
            }
        }
    }
}
