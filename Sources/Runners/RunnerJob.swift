import Kubernetes
import Support

/// The Kubernetes objects for one runner: a Job, and a Secret owned by it that holds the JIT config.
///
/// The JIT config never appears in the Job: the runner reads `ACTIONS_RUNNER_INPUT_JITCONFIG` from the
/// Secret, masks it and removes it from its environment.
package struct RunnerJob: Sendable {
    /// Pod settings that do not depend on the job.
    package struct Settings: Sendable {
        package var namespace: String
        package var mode: RunnerMode
        package var runnerImage: String
        package var dindImage: String
        package var dindMTU: Int?
        package var ttlSecondsAfterFinished: Int
        /// This deployment's marker (`RUNNER_OWNER_LABEL`): a label of every registration it makes, and the
        /// `app.kubernetes.io/instance` label of its Jobs, pods and Secrets.
        package var ownerLabel: String
        /// A private CA the runner must trust (GHES with its own CA, a TLS-inspecting proxy); nil: the image's.
        package var caBundle: CABundle?
        /// Proxy settings for the runner (and dockerd); nil: none.
        package var proxy: Proxy?
        /// The service account and work volume of `kubernetes` mode; unused in the other modes.
        package var containerHooks: ContainerHooks
        /// A custom backend's object instead of a Job; nil: a Job in `mode`.
        package var backend: CustomBackend?

        package init(
            namespace: String,
            mode: RunnerMode,
            runnerImage: String,
            dindImage: String,
            dindMTU: Int?,
            ttlSecondsAfterFinished: Int,
            ownerLabel: String,
            caBundle: CABundle? = nil,
            proxy: Proxy? = nil,
            containerHooks: ContainerHooks = ContainerHooks(),
            backend: CustomBackend? = nil
        ) {
            self.namespace = namespace
            self.mode = mode
            self.runnerImage = runnerImage
            self.dindImage = dindImage
            self.dindMTU = dindMTU
            self.ttlSecondsAfterFinished = ttlSecondsAfterFinished
            self.ownerLabel = ownerLabel
            self.caBundle = caBundle
            self.proxy = proxy
            self.containerHooks = containerHooks
            self.backend = backend
        }
    }

    /// The key of the JIT config in the Secret.
    package static let secretKey = "jitconfig"
    /// Labels of the Secret that record the registration its Job was made for (the link the reapers prove).
    package static let runnerIDLabel = "kube-actions-runner/runner-id"
    package static let runnerNameLabel = "kube-actions-runner/runner-name"
    package static let jobIDLabel = "kube-actions-runner/job-id"
    /// The warm pool a runner Job was made for (instead of a job id).
    package static let poolLabel = "kube-actions-runner/pool"
    /// The profile a runner Job was made with.
    package static let profileLabel = "kube-actions-runner/profile"
    /// The runner's container in the pod (the dind sidecar and init containers have other names).
    package static let runnerContainerName = "runner"
    /// The owner and the repository a runner Job serves, as label values (`labelValue`).
    package static let ownerNameLabel = "kube-actions-runner/owner"
    package static let repositoryNameLabel = "kube-actions-runner/repo"
    package static let instanceLabel = "app.kubernetes.io/instance"

    /// Selects the Jobs, pods and Secrets of the deployment whose marker is `ownerLabel`, and nothing else.
    package static func selector(ownerLabel: String) -> String {
        "app.kubernetes.io/managed-by=kube-actions-runner,\(instanceLabel)=\(ownerLabel)"
    }
    /// uid and gid of `runner` in ghcr.io/actions/actions-runner; gid 123 is its `docker` group.
    static let runnerUID = 1001
    static let dockerGID = 123
    static let dockerSocket = "unix:///var/run/docker.sock"

    package var name: String
    package var namespace: String
    package var labels: [(String, String)]
    /// The `batch/v1` Job, or the custom backend's object.
    package var job: JSONValue
    /// More keys of the runner's Secret besides the JIT config (proxy URLs, which may carry credentials).
    var secretValues: [(String, Secret)] = []
    /// The custom backend the object is of, and the values of its placeholders; nil for a Job.
    package var backend: CustomBackend? = nil
    var placeholderValues: [String: String] = [:]

    /// The resource of the runner's object: nil for a Job.
    package var resource: KubernetesResource? { backend?.resource }

    /// Renders the Job for `request` in `settings.mode`.
    package static func render(for request: RunnerRequest, settings: Settings) -> RunnerJob {
        let name = request.runnerJobName
        let labels = labels(for: request, settings: settings)
        if let backend = settings.backend {
            let labels = labels.map { $0.0 == "kube-actions-runner/mode" ? ($0.0, "custom") : $0 }
            let values = [
                "RUNNER_NAME": name, "SECRET_NAME": name, "NAMESPACE": settings.namespace,
                "RUNNER_LABELS": request.labels.joined(separator: ","), "JOB_ID": String(request.jobID),
                "OWNER": request.owner, "REPO": request.repository,
            ]
            let object = backend.render(
                name: name,
                namespace: settings.namespace,
                values: values,
                labels: labels,
                annotations: annotations(for: request)
            )
            return RunnerJob(
                name: name,
                namespace: settings.namespace,
                labels: labels,
                job: object,
                backend: backend,
                placeholderValues: values
            )
        }
        let metadata: JSONValue = .object([
            ("name", .string(name)),
            ("namespace", .string(settings.namespace)),
            ("labels", .object(labels.map { ($0.0, .string($0.1)) })),
            ("annotations", .object(annotations(for: request))),
        ])
        let template: JSONValue = .object([
            (
                "metadata",
                .object([
                    ("labels", .object(labels.map { ($0.0, .string($0.1)) })),
                    ("annotations", .object(annotations(for: request))),
                ])
            ),
            ("spec", podSpec(name: name, settings: settings)),
        ])
        let job: JSONValue = .object([
            ("apiVersion", "batch/v1"),
            ("kind", "Job"),
            ("metadata", metadata),
            (
                "spec",
                .object([
                    ("ttlSecondsAfterFinished", .int(settings.ttlSecondsAfterFinished)),
                    // A JIT config registers one runner for one job: a retried pod could not use it.
                    ("backoffLimit", 0),
                    ("template", template),
                ])
            ),
        ])
        return RunnerJob(
            name: name,
            namespace: settings.namespace,
            labels: labels,
            job: job,
            secretValues: settings.proxy?.secretValues ?? []
        )
    }

    /// The Secret holding `jitConfig`, owned by the created Job (`jobUID`) so it is deleted with it, and recording
    /// the registration (`runnerID`, `runnerName`) the Job was made for.
    package func secret(jitConfig: String, jobUID: String, runnerID: Int64, runnerName: String) -> JSONValue {
        let recorded = labels + [(Self.runnerIDLabel, String(runnerID)), (Self.runnerNameLabel, runnerName)]
        let data: [(String, JSONValue)] =
            if let backend {
                backend.secretEntries(values: placeholderValues, jitConfig: jitConfig).map { ($0.0, .string($0.1)) }
            } else {
                [(RunnerJob.secretKey, .string(jitConfig))] + secretValues.map { ($0.0, .string($0.1.value)) }
            }
        return .object([
            ("apiVersion", "v1"),
            ("kind", "Secret"),
            (
                "metadata",
                .object([
                    ("name", .string(name)),
                    ("namespace", .string(namespace)),
                    ("labels", .object(recorded.map { ($0.0, .string($0.1)) })),
                    (
                        "ownerReferences",
                        [
                            .object([
                                ("apiVersion", .string(resource?.apiVersion ?? "batch/v1")),
                                ("kind", .string(resource?.kind ?? "Job")),
                                ("name", .string(name)),
                                ("uid", .string(jobUID)),
                                ("controller", true),
                            ])
                        ]
                    ),
                ])
            ),
            ("type", "Opaque"),
            ("immutable", true),
            ("stringData", .object(data)),
        ])
    }

    // MARK: - Pod

    private static func podSpec(name: String, settings: Settings) -> JSONValue {
        let mode = settings.mode
        var spec: [(String, JSONValue)] = [("restartPolicy", "Never")]
        if mode.usesContainerHooks {
            // The hooks call the API server with the pod's service account token.
            spec.append(("serviceAccountName", .string(settings.containerHooks.serviceAccountName)))
            spec.append(("automountServiceAccountToken", true))
        } else {
            spec.append(("automountServiceAccountToken", false))
        }
        spec.append(("enableServiceLinks", false))
        if mode.usesUserNamespace {
            spec.append(("hostUsers", false))
        }
        var podSecurity: [(String, JSONValue)] = [
            ("runAsNonRoot", true),
            ("runAsUser", .int(runnerUID)),
            ("runAsGroup", .int(runnerUID)),
            ("fsGroup", .int(runnerUID)),
        ]
        if mode.hasDocker {
            podSecurity.append(("supplementalGroups", [.int(dockerGID)]))
        }
        podSecurity.append(("seccompProfile", .object([("type", "RuntimeDefault")])))
        spec.append(("securityContext", .object(podSecurity)))
        var initContainers: [JSONValue] = []
        if let caBundle = settings.caBundle {
            initContainers.append(
                caBundle.initContainer(image: settings.runnerImage, security: restrictedContainerSecurity)
            )
        }
        if mode.hasDocker {
            initContainers += dindInitContainers(name: name, settings: settings)
        }
        if mode.usesContainerHooks {
            initContainers.append(hookTemplateInitContainer(name: name, settings: settings))
        }
        if !initContainers.isEmpty {
            spec.append(("initContainers", .array(initContainers)))
        }
        spec.append(("containers", [runnerContainer(name: name, settings: settings)]))
        var volumes: [JSONValue] = [
            mode.usesContainerHooks
                ? workVolume(settings.containerHooks) : .object([("name", "work"), ("emptyDir", .object([]))])
        ]
        if mode.usesContainerHooks {
            volumes.append(.object([("name", "hook-template"), ("emptyDir", .object([]))]))
        }
        if mode.hasDocker {
            for volume in ["dind-sock", "dind-externals", "dind-storage"] {
                volumes.append(.object([("name", .string(volume)), ("emptyDir", .object([]))]))
            }
        }
        volumes += settings.caBundle?.volumes ?? []
        spec.append(("volumes", .array(volumes)))
        return .object(spec)
    }

    private static func runnerContainer(name: String, settings: Settings) -> JSONValue {
        var env: [JSONValue] = [
            .object([
                ("name", "ACTIONS_RUNNER_INPUT_JITCONFIG"),
                (
                    "valueFrom",
                    .object([
                        ("secretKeyRef", .object([("name", .string(name)), ("key", .string(secretKey))]))
                    ])
                ),
            ]),
            .object([
                ("name", "GITHUB_ACTIONS_RUNNER_EXTRA_USER_AGENT"),
                ("value", .string("kube-actions-runner/\(KubeActionsRunnerVersion.current)")),
            ]),
        ]
        var mounts: [JSONValue] = [.object([("name", "work"), ("mountPath", "/home/runner/_work")])]
        if settings.mode.hasDocker {
            env.append(.object([("name", "DOCKER_HOST"), ("value", .string(dockerSocket))]))
            env.append(.object([("name", "RUNNER_WAIT_FOR_DOCKER_IN_SECONDS"), ("value", "120")]))
            mounts.append(.object([("name", "dind-sock"), ("mountPath", "/var/run")]))
        }
        if settings.mode.usesContainerHooks {
            env += containerHooksEnvironment
            mounts.append(hookTemplateMount)
        }
        if let caBundle = settings.caBundle {
            env += caBundle.environment
            mounts += caBundle.runnerMounts
        }
        env += settings.proxy?.environment(secretName: name) ?? []
        return .object([
            ("name", .string(RunnerJob.runnerContainerName)),
            ("image", .string(settings.runnerImage)),
            ("command", ["/home/runner/run.sh"]),
            ("env", .array(env)),
            ("securityContext", restrictedContainerSecurity),
            ("volumeMounts", .array(mounts)),
        ])
    }

    static let restrictedContainerSecurity: JSONValue = .object([
        ("allowPrivilegeEscalation", false),
        ("capabilities", .object([("drop", ["ALL"])])),
    ])

    /// The externals copy (so job containers started by dockerd find the runner's node) and the
    /// dockerd native sidecar, which Kubernetes stops once the runner exits, so the Job completes.
    private static func dindInitContainers(name: String, settings: Settings) -> [JSONValue] {
        var dockerdArgs: [JSONValue] = ["dockerd", .string("--host=\(dockerSocket)"), .string("--group=\(dockerGID)")]
        if let mtu = settings.dindMTU {
            dockerdArgs.append(.string("--mtu=\(mtu)"))
            // The default bridge's MTU does not reach networks that compose or actions create.
            dockerdArgs.append(.string("--default-network-opt=bridge=com.docker.network.driver.mtu=\(mtu)"))
        }
        let externals: JSONValue = .object([
            ("name", "init-dind-externals"),
            ("image", .string(settings.runnerImage)),
            ("command", ["cp"]),
            ("args", ["-r", "/home/runner/externals/.", "/home/runner/tmpDir/"]),
            ("securityContext", restrictedContainerSecurity),
            ("volumeMounts", [.object([("name", "dind-externals"), ("mountPath", "/home/runner/tmpDir")])]),
        ])
        var dind: [(String, JSONValue)] = [
            ("name", "dind"),
            ("image", .string(settings.dindImage)),
            ("args", .array(dockerdArgs)),
        ]
        // dockerd pulls images itself: through the proxy too.
        if let proxy = settings.proxy {
            dind.append(("env", .array(proxy.environment(secretName: name))))
        }
        dind += [
            ("restartPolicy", "Always"),
            (
                "securityContext",
                .object([
                    ("privileged", true),
                    ("runAsUser", 0),
                    ("runAsGroup", 0),
                    ("runAsNonRoot", false),
                ])
            ),
            (
                "startupProbe",
                .object([
                    ("exec", .object([("command", ["docker", "info"])])),
                    ("initialDelaySeconds", 0),
                    ("periodSeconds", 2),
                    ("failureThreshold", 60),
                ])
            ),
            (
                "volumeMounts",
                [
                    .object([("name", "work"), ("mountPath", "/home/runner/_work")]),
                    .object([("name", "dind-sock"), ("mountPath", "/var/run")]),
                    .object([("name", "dind-externals"), ("mountPath", "/home/runner/externals")]),
                    // An emptyDir, not the container's overlay root: overlay on overlay corrupts layers.
                    .object([("name", "dind-storage"), ("mountPath", "/var/lib/docker")]),
                ]
            ),
        ]
        return [externals, .object(dind)]
    }

    // MARK: - Labels

    private static func labels(for request: RunnerRequest, settings: Settings) -> [(String, String)] {
        [
            ("app", "github-runner"),
            ("app.kubernetes.io/managed-by", "kube-actions-runner"),
            (instanceLabel, settings.ownerLabel),
            (ownerNameLabel, labelValue(request.owner)),
            (repositoryNameLabel, labelValue(request.repository)),
            request.warm.map { (poolLabel, labelValue($0.pool)) } ?? (jobIDLabel, String(request.jobID)),
            ("kube-actions-runner/mode", settings.mode.rawValue),
        ]
    }

    private static func annotations(for request: RunnerRequest) -> [(String, JSONValue)] {
        if let warm = request.warm {
            return [
                ("kube-actions-runner/repository", .string("\(request.owner)/\(request.repository)")),
                ("kube-actions-runner/pool", .string(warm.pool)),
            ]
        }
        return [
            ("kube-actions-runner/repository", .string("\(request.owner)/\(request.repository)")),
            ("kube-actions-runner/run-id", .string(String(request.runID))),
            ("kube-actions-runner/job-name", .string(request.jobName)),
        ]
    }

    /// A valid label value: at most 63 of `[A-Za-z0-9._-]`, starting and ending alphanumeric.
    package static func labelValue(_ text: String) -> String {
        var bytes = text.utf8.map { byte -> UInt8 in
            let allowed =
                (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
                || byte == 45 || byte == 46 || byte == 95
            return allowed ? byte : 45
        }
        if bytes.count > 63 { bytes = Array(bytes[0..<63]) }
        func isAlphanumeric(_ byte: UInt8) -> Bool {
            (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
        }
        while let first = bytes.first, !isAlphanumeric(first) { bytes.removeFirst() }
        while let last = bytes.last, !isAlphanumeric(last) { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension PodSummary {
    /// The pod's runner container (not an init container or the dind sidecar); nil while the pod has no status.
    var runnerContainer: ContainerSummary? {
        containers.first { $0.name == RunnerJob.runnerContainerName && !$0.isInit }
    }
}
