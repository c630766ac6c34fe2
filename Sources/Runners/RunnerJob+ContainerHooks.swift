import Support

extension RunnerJob {
    /// What `kubernetes` mode adds to a runner pod: the runner image's container hooks start each job container as
    /// a pod of its own (ARC's `kubernetes` container mode), sharing a work volume claimed for the runner pod.
    ///
    /// The hooks call the API server as the runner pod's service account (README, "Runner modes"; its Role is in
    /// `kubernetes/container-hooks.yaml`). They find the work volume's claim by name, `<runner pod>-work`, which is
    /// the name Kubernetes gives the claim of the pod's generic ephemeral volume `work`; that claim is owned by the
    /// pod, so it goes with it.
    ///
    /// The pods the hooks create carry this deployment's marker: the runner writes them a pod template extension
    /// (`ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE`) whose labels the hooks merge into every pod and Job they create.
    /// That marker and the runner Job's name are what `reapOrphanedHookPods` proves before deleting one.
    package struct ContainerHooks: Sendable, Equatable {
        /// The service account the runner pod runs as, with its token mounted.
        package var serviceAccountName: String
        /// The work volume's size, a Kubernetes quantity.
        package var workVolumeSize: String
        /// The work volume's storage class; nil: the cluster's default.
        package var workVolumeStorageClass: String?

        package init(
            serviceAccountName: String = "kube-actions-runner-hooks",
            workVolumeSize: String = "1Gi",
            workVolumeStorageClass: String? = nil
        ) {
            self.serviceAccountName = serviceAccountName
            self.workVolumeSize = workVolumeSize
            self.workVolumeStorageClass = workVolumeStorageClass
        }
    }

    /// `app.kubernetes.io/managed-by` of the pods and Jobs the hooks create: not the runner Jobs' own value, so the
    /// runner Job selector never lists them.
    package static let hookPodManager = "kube-actions-runner-hooks"
    /// The runner Job a hook pod was created for.
    package static let hookRunnerJobLabel = "kube-actions-runner/runner-job"
    /// The hooks' own label on the pods they create: the runner pod's name.
    package static let hookRunnerPodLabel = "runner-pod"

    /// Selects the pods the hooks created for this deployment's runners, and nothing else.
    package static func hookPodSelector(ownerLabel: String) -> String {
        "app.kubernetes.io/managed-by=\(hookPodManager),\(instanceLabel)=\(ownerLabel)"
    }

    static let containerHooksPath = "/home/runner/k8s/index.js"
    static let hookTemplateDirectory = "/home/runner/hook-template"
    static let hookTemplatePath = hookTemplateDirectory + "/template.yaml"

    /// The pod template extension the hooks merge into what they create: only labels.
    static func hookTemplate(runnerJobName: String, ownerLabel: String) -> String {
        // Label values are `[A-Za-z0-9._-]`: quoted, so YAML reads each as a string (`"123"`, `"true"`).
        """
        metadata:
          labels:
            app.kubernetes.io/managed-by: "\(hookPodManager)"
            \(instanceLabel): "\(ownerLabel)"
            \(hookRunnerJobLabel): "\(runnerJobName)"
        """
    }

    /// Writes the template into the pod's `hook-template` volume before the runner starts. The text goes through
    /// the environment, never through the shell's command line.
    static func hookTemplateInitContainer(name: String, settings: Settings) -> JSONValue {
        .object([
            ("name", "init-hook-template"),
            ("image", .string(settings.runnerImage)),
            ("command", ["sh", "-c", .string(#"printf '%s\n' "$HOOK_TEMPLATE" > "$HOOK_TEMPLATE_PATH""#)]),
            (
                "env",
                [
                    .object([
                        ("name", "HOOK_TEMPLATE"),
                        ("value", .string(hookTemplate(runnerJobName: name, ownerLabel: settings.ownerLabel))),
                    ]),
                    .object([("name", "HOOK_TEMPLATE_PATH"), ("value", .string(hookTemplatePath))]),
                ]
            ),
            ("securityContext", restrictedContainerSecurity),
            ("volumeMounts", [.object([("name", "hook-template"), ("mountPath", .string(hookTemplateDirectory))])]),
        ])
    }

    /// The runner's variables for the hooks (the names and values ARC's chart sets in this mode).
    static let containerHooksEnvironment: [JSONValue] = [
        .object([("name", "ACTIONS_RUNNER_CONTAINER_HOOKS"), ("value", .string(containerHooksPath))]),
        .object([
            ("name", "ACTIONS_RUNNER_POD_NAME"),
            ("valueFrom", .object([("fieldRef", .object([("fieldPath", "metadata.name")]))])),
        ]),
        .object([("name", "ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER"), ("value", "true")]),
        .object([("name", "ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE"), ("value", .string(hookTemplatePath))]),
    ]

    static let hookTemplateMount: JSONValue = .object([
        ("name", "hook-template"), ("mountPath", .string(hookTemplateDirectory)), ("readOnly", true),
    ])

    /// The work volume: a claim made for the pod and deleted with it (a generic ephemeral volume), so the pods the
    /// hooks start can mount what the runner checked out.
    static func workVolume(_ hooks: ContainerHooks) -> JSONValue {
        var claim: [(String, JSONValue)] = [("accessModes", ["ReadWriteOnce"])]
        if let storageClass = hooks.workVolumeStorageClass {
            claim.append(("storageClassName", .string(storageClass)))
        }
        claim.append(("resources", .object([("requests", .object([("storage", .string(hooks.workVolumeSize))]))])))
        return .object([
            ("name", "work"),
            ("ephemeral", .object([("volumeClaimTemplate", .object([("spec", .object(claim))]))])),
        ])
    }
}
