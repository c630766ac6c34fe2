import Support

extension RunnerJob {
    /// What a profile adds to the pod the settings render: scheduling, resources, metadata, environment, volumes.
    /// Kubernetes-shaped values are kept as decoded (`JSONValue`); the App validated them.
    package struct PodCustomization: Sendable, Equatable {
        /// `resources` of the runner container and of the dind sidecar.
        package var runnerResources: JSONValue?
        package var dindResources: JSONValue?
        package var nodeSelector: [(String, String)] = []
        package var tolerations: [JSONValue] = []
        package var affinity: JSONValue?
        package var topologySpreadConstraints: [JSONValue] = []
        /// The pod's own annotations and labels, after the service's.
        package var annotations: [(String, String)] = []
        package var labels: [(String, String)] = []
        /// The runner container's extra variables (`{name, value}` or `{name, valueFrom}`), after the service's.
        package var env: [JSONValue] = []
        /// Extra pod volumes, and where the runner container mounts them.
        package var volumes: [JSONValue] = []
        package var volumeMounts: [JSONValue] = []
        package var serviceAccountName: String?
        package var imagePullSecrets: [String] = []
        package var runtimeClassName: String?
        package var priorityClassName: String?
        /// The Job's `activeDeadlineSeconds`: the runner is stopped after that long, whatever it does.
        package var activeDeadlineSeconds: Int?

        package init() {}

        package var isEmpty: Bool { self == PodCustomization() }

        package static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.rendered == rhs.rendered
        }

        /// Every field as one value, for comparison.
        private var rendered: JSONValue {
            .object([
                ("runnerResources", runnerResources ?? .null), ("dindResources", dindResources ?? .null),
                ("nodeSelector", .object(nodeSelector.map { ($0.0, .string($0.1)) })),
                ("tolerations", .array(tolerations)), ("affinity", affinity ?? .null),
                ("topologySpreadConstraints", .array(topologySpreadConstraints)),
                ("annotations", .object(annotations.map { ($0.0, .string($0.1)) })),
                ("labels", .object(labels.map { ($0.0, .string($0.1)) })), ("env", .array(env)),
                ("volumes", .array(volumes)), ("volumeMounts", .array(volumeMounts)),
                ("serviceAccountName", serviceAccountName.map(JSONValue.string) ?? .null),
                ("imagePullSecrets", .array(imagePullSecrets.map(JSONValue.string))),
                ("runtimeClassName", runtimeClassName.map(JSONValue.string) ?? .null),
                ("priorityClassName", priorityClassName.map(JSONValue.string) ?? .null),
                ("activeDeadlineSeconds", activeDeadlineSeconds.map(JSONValue.int) ?? .null),
            ])
        }
    }

    /// Names of environment variables the service sets in the runner container; a profile cannot set them.
    package static let ownedEnvironment: Set<String> = [
        "ACTIONS_RUNNER_INPUT_JITCONFIG", "GITHUB_ACTIONS_RUNNER_EXTRA_USER_AGENT", "DOCKER_HOST",
        "RUNNER_WAIT_FOR_DOCKER_IN_SECONDS", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY",
        "no_proxy", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "GIT_SSL_CAINFO", "ACTIONS_RUNNER_CONTAINER_HOOKS",
        "ACTIONS_RUNNER_POD_NAME", "ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER", "ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE",
    ]
    /// Volumes the service's pods may have; a profile's volumes take other names.
    package static let ownedVolumes: Set<String> = [
        "work", "dind-sock", "dind-externals", "dind-storage", "ca-bundle-source", "ca-bundle", "hook-template",
    ]
    /// Containers the service renders; a patch merges into them by name.
    package static let ownedContainers: Set<String> = [
        runnerContainerName, "dind", "init-dind-externals", "ca-bundle", "init-hook-template",
    ]

    /// Whether a label or annotation key is the service's own (its ownership and link labels, the Job
    /// controller's): a profile cannot set it.
    package static func isOwnedMetadataKey(_ key: String) -> Bool {
        key == "app" || key.hasPrefix("app.kubernetes.io/") || key.hasPrefix("kube-actions-runner/")
            || key.hasPrefix("batch.kubernetes.io/") || key == "controller-uid" || key == "job-name"
    }

    /// Applies a profile to the rendered Job: its label (`profile`, when named), `pod`, then `patch` over the pod
    /// template, and finally the service's own fields again (labels, the JIT Secret reference, `restartPolicy`),
    /// so nothing a patch says can detach the pod from its Job, its Secret or this deployment.
    mutating func customize(with pod: PodCustomization, profile: String?, patch: JSONValue?) {
        if let profile { labels.append((RunnerProfile.profileLabel, RunnerJob.labelValue(profile))) }
        let ownLabels: JSONValue = .object(labels.map { ($0.0, .string($0.1)) })
        let jitVariable = Self.jitVariable(secretName: name)
        job = job.updating("metadata") { $0?.updating("labels") { _ in ownLabels } }
        job = job.updating("spec") { spec in
            var spec = spec ?? .object([])
            if let seconds = pod.activeDeadlineSeconds {
                spec = spec.inserting("activeDeadlineSeconds", .int(seconds), before: "template")
            }
            return spec.updating("template") { template in
                var template = (template ?? .object([])).customizingPod(with: pod, labels: ownLabels)
                if let patch { template = Self.merge(patch, over: template) }
                // The service's own fields, whatever the patch said.
                return template.updating("metadata") { metadata in
                    (metadata ?? .object([])).updating("labels") { labels in
                        let custom = labels?.members.filter { !Self.isOwnedMetadataKey($0.0) } ?? []
                        return .object((ownLabels.members) + custom)
                    }
                }.updating("spec") { spec in
                    (spec ?? .object([])).updating("restartPolicy") { _ in "Never" }.updating("containers") {
                        containers in
                        .array(
                            (containers?.elements ?? []).map { container in
                                guard container["name"] == .string(RunnerJob.runnerContainerName) else {
                                    return container
                                }
                                return container.updating("env") { env in
                                    let others = (env?.elements ?? []).filter {
                                        $0["name"] != .string("ACTIONS_RUNNER_INPUT_JITCONFIG")
                                    }
                                    return .array([jitVariable] + others)
                                }
                            }
                        )
                    }
                }
            }
        }
    }

    /// The runner's JIT config variable, read from the runner's Secret.
    static func jitVariable(secretName: String) -> JSONValue {
        .object([
            ("name", "ACTIONS_RUNNER_INPUT_JITCONFIG"),
            (
                "valueFrom",
                .object([("secretKeyRef", .object([("name", .string(secretName)), ("key", .string(secretKey))]))])
            ),
        ])
    }

    /// `patch` merged over `base` with strategic-merge semantics where they matter: objects merge key by key (a
    /// `null` removes the key); `containers`, `initContainers`, `volumes` and a container's `env` merge their items
    /// by `name` (new names are appended); any other list, and any other value, replaces.
    package static func merge(_ patch: JSONValue, over base: JSONValue) -> JSONValue {
        guard case .object(let patchMembers) = patch, case .object(var members) = base else { return patch }
        for (key, value) in patchMembers {
            let index = members.firstIndex { $0.0 == key }
            if value == .null {
                if let index { members.remove(at: index) }
                continue
            }
            let merged: JSONValue
            if let index {
                let current = members[index].1
                if ["containers", "initContainers", "volumes", "env"].contains(key),
                    case .array(let items) = value, case .array(let existing) = current
                {
                    merged = .array(mergeByName(items, over: existing))
                } else {
                    merged = merge(value, over: current)
                }
                members[index].1 = merged
            } else {
                members.append((key, value))
            }
        }
        return .object(members)
    }

    private static func mergeByName(_ patch: [JSONValue], over base: [JSONValue]) -> [JSONValue] {
        var result = base
        for item in patch {
            if let name = item["name"], let index = result.firstIndex(where: { $0["name"] == name }) {
                result[index] = merge(item, over: result[index])
            } else {
                result.append(item)
            }
        }
        return result
    }
}

extension JSONValue {
    /// An object's members (empty for anything else).
    var members: [(String, JSONValue)] {
        if case .object(let members) = self { return members }
        return []
    }

    /// An array's elements (empty for anything else).
    var elements: [JSONValue] {
        if case .array(let elements) = self { return elements }
        return []
    }

    /// The object with `key`'s value transformed in place (appended when new; removed when the transform gives nil).
    func updating(_ key: String, _ transform: (JSONValue?) -> JSONValue?) -> JSONValue {
        var members = self.members
        if let index = members.firstIndex(where: { $0.0 == key }) {
            if let value = transform(members[index].1) {
                members[index].1 = value
            } else {
                members.remove(at: index)
            }
        } else if let value = transform(nil) {
            members.append((key, value))
        }
        return .object(members)
    }

    /// The object with `key` set, placed before `next` when it is new (keys keep a stable, readable order).
    func inserting(_ key: String, _ value: JSONValue, before next: String) -> JSONValue {
        var members = self.members.filter { $0.0 != key }
        let index = members.firstIndex { $0.0 == next } ?? members.endIndex
        members.insert((key, value), at: index)
        return .object(members)
    }

    /// A pod template with a profile's customizations.
    fileprivate func customizingPod(with pod: RunnerJob.PodCustomization, labels: JSONValue) -> JSONValue {
        updating("metadata") { metadata in
            var metadata = metadata ?? .object([])
            metadata = metadata.updating("labels") { _ in
                .object(labels.members + pod.labels.map { ($0.0, .string($0.1)) })
            }
            if !pod.annotations.isEmpty {
                metadata = metadata.updating("annotations") { annotations in
                    .object((annotations?.members ?? []) + pod.annotations.map { ($0.0, .string($0.1)) })
                }
            }
            return metadata
        }.updating("spec") { spec in
            var spec = spec ?? .object([])
            if let account = pod.serviceAccountName {
                spec = spec.updating("serviceAccountName") { _ in .string(account) }
            }
            if let name = pod.runtimeClassName { spec = spec.updating("runtimeClassName") { _ in .string(name) } }
            if let name = pod.priorityClassName { spec = spec.updating("priorityClassName") { _ in .string(name) } }
            if !pod.nodeSelector.isEmpty {
                spec = spec.updating("nodeSelector") { _ in .object(pod.nodeSelector.map { ($0.0, .string($0.1)) }) }
            }
            if !pod.tolerations.isEmpty { spec = spec.updating("tolerations") { _ in .array(pod.tolerations) } }
            if let affinity = pod.affinity { spec = spec.updating("affinity") { _ in affinity } }
            if !pod.topologySpreadConstraints.isEmpty {
                spec = spec.updating("topologySpreadConstraints") { _ in .array(pod.topologySpreadConstraints) }
            }
            if !pod.imagePullSecrets.isEmpty {
                spec = spec.updating("imagePullSecrets") { _ in
                    .array(pod.imagePullSecrets.map { .object([("name", .string($0))]) })
                }
            }
            spec = spec.updating("containers") { containers in
                .array(
                    (containers?.elements ?? []).map { container in
                        guard container["name"] == .string(RunnerJob.runnerContainerName) else { return container }
                        var container = container
                        if !pod.env.isEmpty {
                            container = container.updating("env") { .array(($0?.elements ?? []) + pod.env) }
                        }
                        if let resources = pod.runnerResources {
                            container = container.inserting("resources", resources, before: "securityContext")
                        }
                        if !pod.volumeMounts.isEmpty {
                            container = container.updating("volumeMounts") {
                                .array(($0?.elements ?? []) + pod.volumeMounts)
                            }
                        }
                        return container
                    }
                )
            }
            if let resources = pod.dindResources {
                spec = spec.updating("initContainers") { containers in
                    containers.map { containers in
                        .array(
                            containers.elements.map { container in
                                guard container["name"] == "dind" else { return container }
                                return container.inserting("resources", resources, before: "restartPolicy")
                            }
                        )
                    }
                }
            }
            if !pod.volumes.isEmpty {
                spec = spec.updating("volumes") { .array(($0?.elements ?? []) + pod.volumes) }
            }
            return spec
        }
    }
}
