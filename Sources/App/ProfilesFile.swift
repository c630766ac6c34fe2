import Kubernetes
import Runners
import Support
import Yams

/// `PROFILES_FILE`: runner profiles, read from YAML into already-decoded values that `RunnerProfile` takes.
///
/// ```yaml
/// profiles:
///   - name: arm64
///     match: self-hosted+arm64          # the LABEL_MATCHERS syntax
///     labels: [self-hosted, linux, arm64]
///     nodeSelector: {kubernetes.io/arch: arm64}
/// ```
/// Every problem is reported at once, each with its path (`profiles[2].tolerations[0].effect`) and line; unknown
/// keys are problems too, so a misspelt field never silently does nothing. Names the service owns (its labels and
/// annotations, the runner's JIT config variable, its volumes) cannot be set.
package struct ProfilesFile: Sendable {
    /// One profile as the file gives it: what it sets, the environment's settings for the rest.
    package struct Profile: Sendable {
        package var name: String
        package var matcher: LabelMatcher
        package var labels: [String]?
        package var mode: RunnerMode?
        package var runnerImage: String?
        package var dindImage: String?
        package var pod = RunnerJob.PodCustomization()
        package var maxRunners: Int?
        package var podTemplatePatch: JSONValue?
        /// A custom backend's object instead of a Job.
        package var backend: CustomBackend?
        /// `warmPool`: idle runners kept in each of these repositories.
        package var minIdle = 0
        package var warmRepositories: [RepositoryRegistry.Repository] = []

        /// The profile's warm pool, if it keeps one.
        package var warmPool: WarmPool? {
            guard minIdle > 0, let labels else { return nil }
            return WarmPool(
                name: name,
                minIdle: minIdle,
                labels: labels,
                repositories: warmRepositories,
                maxRunners: maxRunners
            )
        }

        /// The profile, with `base` (the environment's settings) for what it does not set.
        package func runnerProfile(base: RunnerJob.Settings) -> RunnerProfile {
            var settings = base
            if let mode { settings.mode = mode }
            if let runnerImage { settings.runnerImage = runnerImage }
            if let dindImage { settings.dindImage = dindImage }
            if let backend { settings.backend = backend }
            return RunnerProfile(
                name: name,
                matcher: matcher,
                runnerLabels: labels,
                settings: settings,
                pod: pod,
                maxRunners: maxRunners,
                podTemplatePatch: podTemplatePatch,
                warmPool: warmPool
            )
        }
    }

    /// One problem: where in the file, and what is wrong.
    package struct Problem: Sendable, Equatable, CustomStringConvertible {
        package var path: String
        package var line: Int?
        package var message: String

        package var description: String {
            "\(path.isEmpty ? "(file)" : path): \(message)" + (line.map { " (line \($0))" } ?? "")
        }
    }

    package struct Problems: Error, Sendable, Equatable, CustomStringConvertible {
        package var problems: [Problem]
        package var description: String { problems.map(\.description).joined(separator: "\n") }
    }

    package var profiles: [Profile]

    /// The profiles of the file at `path`, and its text: read by path each time (a ConfigMap volume swaps a
    /// symlink).
    package static func read(_ path: String, files: some FileReading) throws(Problems) -> ([Profile], String) {
        let text: String?
        do {
            text = try files.read(path)
        } catch {
            throw Problems(problems: [Problem(path: "", line: nil, message: "\(error)")])
        }
        guard let text else {
            throw Problems(problems: [Problem(path: "", line: nil, message: "the file does not exist")])
        }
        return (try ProfilesFile(parsing: text).profiles, text)
    }

    /// Reads the file's text; every problem at once.
    package init(parsing text: String) throws(Problems) {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw Problems(problems: [Problem(path: "", line: nil, message: "not YAML: \(error)")])
        }
        var reader = NodeReader()
        profiles = reader.file(root)
        guard reader.problems.isEmpty else { throw Problems(problems: reader.problems) }
    }
}

/// Walks the YAML tree, collecting problems with their paths.
private struct NodeReader {
    var problems: [ProfilesFile.Problem] = []

    mutating func problem(_ path: String, _ node: Node?, _ message: String) {
        problems.append(ProfilesFile.Problem(path: path, line: node?.mark?.line, message: message))
    }

    static let profileKeys = [
        "name", "match", "labels", "mode", "runnerImage", "dindImage", "resources", "nodeSelector", "tolerations",
        "affinity", "topologySpreadConstraints", "podAnnotations", "podLabels", "env", "volumes", "volumeMounts",
        "serviceAccountName", "imagePullSecrets", "runtimeClassName", "priorityClassName", "activeDeadlineSeconds",
        "maxRunners", "podTemplatePatch", "backend", "warmPool",
    ]
    /// What shapes a pod: meaningless for a custom backend's object.
    static let podKeys: Set<String> = [
        "mode", "runnerImage", "dindImage", "resources", "nodeSelector", "tolerations", "affinity",
        "topologySpreadConstraints", "podAnnotations", "podLabels", "env", "volumes", "volumeMounts",
        "serviceAccountName", "imagePullSecrets", "runtimeClassName", "priorityClassName", "activeDeadlineSeconds",
        "podTemplatePatch",
    ]

    mutating func file(_ root: Node?) -> [ProfilesFile.Profile] {
        guard let root else {
            problem("", nil, "the file is empty; it needs `profiles:`, a list")
            return []
        }
        guard let members = mapping(root, at: "", keys: ["profiles"]) else { return [] }
        guard let list = members["profiles"] else {
            problem("profiles", root, "missing: a list of profiles")
            return []
        }
        guard let items = sequence(list, at: "profiles") else { return [] }
        if items.isEmpty { problem("profiles", list, "empty: list at least one profile, or unset PROFILES_FILE") }
        var profiles: [ProfilesFile.Profile] = []
        var names: Set<String> = []
        for (index, item) in items.enumerated() {
            let path = "profiles[\(index)]"
            guard let profile = profile(item, at: path) else { continue }
            if !names.insert(profile.name).inserted {
                problem("\(path).name", item, "'\(profile.name)' is the name of an earlier profile too")
            }
            profiles.append(profile)
        }
        return profiles
    }

    mutating func profile(_ node: Node, at path: String) -> ProfilesFile.Profile? {
        guard let fields = mapping(node, at: path, keys: Self.profileKeys) else { return nil }
        let name = fields["name"].flatMap { string($0, at: "\(path).name") }
        if fields["name"] == nil { problem("\(path).name", node, "missing: every profile needs a name") }
        if let name, RunnerJob.labelValue(name) != name {
            problem(
                "\(path).name",
                fields["name"],
                "'\(name)' is not a label value (at most 63 of A-Z a-z 0-9 . _ -, starting and ending alphanumeric)"
            )
        }
        let before = problems.count
        var matcher = LabelMatcher.selfHosted
        if let node = fields["match"], let text = string(node, at: "\(path).match") {
            do {
                matcher = try LabelMatcher(parsing: text)
            } catch {
                problem("\(path).match", node, error.description)
            }
        } else if fields["match"] == nil {
            problem("\(path).match", node, "missing: which jobs it takes, in the LABEL_MATCHERS syntax")
        }
        var profile = ProfilesFile.Profile(name: name ?? "", matcher: matcher)
        if let node = fields["labels"] {
            let labels = strings(node, at: "\(path).labels")
            if labels.isEmpty || labels.count > 99 {
                problem("\(path).labels", node, "list 1 to 99 labels (GitHub takes 100 with the owner label)")
            }
            if labels.contains(where: { $0.trimmingOWS().isEmpty }) {
                problem("\(path).labels", node, "a label is empty")
            }
            profile.labels = labels
        }
        if let node = fields["mode"], let text = string(node, at: "\(path).mode") {
            if let mode = RunnerMode(rawValue: text) {
                profile.mode = mode
            } else {
                problem(
                    "\(path).mode",
                    node,
                    "'\(text)' is not a mode: one of \(RunnerMode.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
        }
        profile.runnerImage = fields["runnerImage"].flatMap { image($0, at: "\(path).runnerImage") }
        profile.dindImage = fields["dindImage"].flatMap { image($0, at: "\(path).dindImage") }
        if let node = fields["resources"] { resources(node, at: "\(path).resources", into: &profile.pod) }
        if let node = fields["nodeSelector"] {
            profile.pod.nodeSelector = stringMap(node, at: "\(path).nodeSelector")
        }
        if let node = fields["tolerations"] {
            profile.pod.tolerations = objects(node, at: "\(path).tolerations") { reader, item, itemPath in
                reader.toleration(item, at: itemPath)
            }
        }
        if let node = fields["affinity"] {
            if let members = mapping(
                node,
                at: "\(path).affinity",
                keys: ["nodeAffinity", "podAffinity", "podAntiAffinity"]
            ) {
                for (key, value) in members.ordered { _ = mapping(value, at: "\(path).affinity.\(key)", keys: nil) }
                profile.pod.affinity = json(node, at: "\(path).affinity")
            }
        }
        if let node = fields["topologySpreadConstraints"] {
            profile.pod.topologySpreadConstraints = objects(node, at: "\(path).topologySpreadConstraints") {
                reader,
                item,
                itemPath in
                reader.spreadConstraint(item, at: itemPath)
            }
        }
        for (key, isLabel) in [("podAnnotations", false), ("podLabels", true)] {
            guard let node = fields[key] else { continue }
            let values = stringMap(node, at: "\(path).\(key)")
            for (name, _) in values where RunnerJob.isOwnedMetadataKey(name) {
                problem("\(path).\(key).\(name)", node, "the service sets this \(isLabel ? "label" : "annotation")")
            }
            if isLabel {
                for (name, value) in values where RunnerJob.labelValue(value) != value {
                    problem("\(path).\(key).\(name)", node, "'\(value)' is not a label value")
                }
                profile.pod.labels = values
            } else {
                profile.pod.annotations = values
            }
        }
        if let node = fields["env"] {
            var seen: Set<String> = []
            profile.pod.env = objects(node, at: "\(path).env") { reader, item, itemPath in
                reader.variable(item, at: itemPath, seen: &seen)
            }
        }
        var volumeNames: Set<String> = []
        if let node = fields["volumes"] {
            profile.pod.volumes = objects(node, at: "\(path).volumes") { reader, item, itemPath in
                reader.volume(item, at: itemPath, names: &volumeNames)
            }
        }
        if let node = fields["volumeMounts"] {
            profile.pod.volumeMounts = objects(node, at: "\(path).volumeMounts") { reader, item, itemPath in
                reader.volumeMount(item, at: itemPath, volumes: volumeNames)
            }
        }
        profile.pod.serviceAccountName = fields["serviceAccountName"].flatMap {
            dnsName($0, at: "\(path).serviceAccountName")
        }
        profile.pod.runtimeClassName = fields["runtimeClassName"].flatMap {
            dnsName($0, at: "\(path).runtimeClassName")
        }
        profile.pod.priorityClassName = fields["priorityClassName"].flatMap {
            dnsName($0, at: "\(path).priorityClassName")
        }
        if let node = fields["imagePullSecrets"], let items = sequence(node, at: "\(path).imagePullSecrets") {
            for (index, item) in items.enumerated() {
                let itemPath = "\(path).imagePullSecrets[\(index)]"
                // A name, or `{name: …}` as Kubernetes writes it.
                if case .mapping = item {
                    if let members = mapping(item, at: itemPath, keys: ["name"]), let name = members["name"] {
                        if let name = dnsName(name, at: "\(itemPath).name") {
                            profile.pod.imagePullSecrets.append(name)
                        }
                    } else {
                        problem("\(itemPath).name", item, "missing")
                    }
                } else if let name = dnsName(item, at: itemPath) {
                    profile.pod.imagePullSecrets.append(name)
                }
            }
        }
        profile.pod.activeDeadlineSeconds = fields["activeDeadlineSeconds"].flatMap {
            integer($0, at: "\(path).activeDeadlineSeconds", from: 1)
        }
        profile.maxRunners = fields["maxRunners"].flatMap { integer($0, at: "\(path).maxRunners", from: 1) }
        if let node = fields["podTemplatePatch"] {
            profile.podTemplatePatch = templatePatch(node, at: "\(path).podTemplatePatch")
        }
        if let node = fields["backend"] {
            profile.backend = backend(node, at: "\(path).backend")
            for (key, value) in fields.ordered where Self.podKeys.contains(key) {
                problem("\(path).\(key)", value, "shapes a pod: a profile with a backend makes no pod; leave it out")
            }
        }
        if let node = fields["warmPool"] {
            warmPool(node, at: "\(path).warmPool", into: &profile)
            if profile.labels == nil {
                problem("\(path).warmPool", node, "a warm pool's runners register before any job: give `labels`")
            }
            if let cap = profile.maxRunners, profile.minIdle > cap {
                problem("\(path).warmPool.minIdle", node, "more than maxRunners (\(cap))")
            }
        }
        // With problems the file is refused anyway; its name still counts when names are compared.
        return name == nil && problems.count > before ? nil : profile
    }

    // MARK: - Kubernetes-shaped fields

    mutating func resources(_ node: Node, at path: String, into pod: inout RunnerJob.PodCustomization) {
        guard let containers = mapping(node, at: path, keys: ["runner", "dind"]) else { return }
        for (container, value) in containers.ordered {
            let containerPath = "\(path).\(container)"
            guard let kinds = mapping(value, at: containerPath, keys: ["requests", "limits"]) else { continue }
            var rendered: [(String, JSONValue)] = []
            for kind in ["limits", "requests"] {
                guard let amounts = kinds[kind],
                    let members = mapping(amounts, at: "\(containerPath).\(kind)", keys: nil)
                else { continue }
                var values: [(String, JSONValue)] = []
                for (resource, amount) in members.ordered {
                    let amountPath = "\(containerPath).\(kind).\(resource)"
                    guard case .scalar(let scalar) = amount, Self.isQuantity(scalar.string) else {
                        problem(amountPath, amount, "not a quantity (such as 500m, 2, 4Gi)")
                        continue
                    }
                    values.append((resource, .string(scalar.string)))
                }
                rendered.append((kind, .object(values)))
            }
            if container == "runner" {
                pod.runnerResources = .object(rendered)
            } else {
                pod.dindResources = .object(rendered)
            }
        }
    }

    /// A Kubernetes quantity: a decimal number with an optional suffix (binary Ki…Ei, decimal n…E, or an exponent).
    static func isQuantity(_ text: String) -> Bool {
        var rest = Substring(text)
        if rest.first == "+" || rest.first == "-" { rest = rest.dropFirst() }
        let number = rest.prefix { ("0"..."9").contains($0) || $0 == "." }
        guard !number.isEmpty, number != ".", number.filter({ $0 == "." }).count <= 1 else { return false }
        let suffix = rest.dropFirst(number.count)
        let suffixes: Set<Substring> = [
            "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E",
        ]
        if suffixes.contains(suffix) { return true }
        guard let first = suffix.first, first == "e" || first == "E" else { return false }
        var exponent = suffix.dropFirst()
        if exponent.first == "+" || exponent.first == "-" { exponent = exponent.dropFirst() }
        return !exponent.isEmpty && exponent.allSatisfy { ("0"..."9").contains($0) }
    }

    mutating func toleration(_ node: Node, at path: String) -> JSONValue? {
        guard
            let fields = mapping(node, at: path, keys: ["key", "operator", "value", "effect", "tolerationSeconds"])
        else { return nil }
        let before = problems.count
        var op = "Equal"
        if let node = fields["operator"], let text = string(node, at: "\(path).operator") {
            if ["Exists", "Equal"].contains(text) {
                op = text
            } else {
                problem("\(path).operator", node, "must be Exists or Equal")
            }
        }
        if let node = fields["effect"], let text = string(node, at: "\(path).effect"),
            !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(text)
        {
            problem("\(path).effect", node, "must be one of NoSchedule, PreferNoSchedule, NoExecute")
        }
        _ = fields["key"].flatMap { string($0, at: "\(path).key") }
        if let node = fields["value"], string(node, at: "\(path).value") != nil, op == "Exists" {
            problem("\(path).value", node, "must be empty when operator is Exists")
        }
        if fields["key"] == nil && op != "Exists" {
            problem("\(path).key", node, "missing: an empty key needs operator Exists")
        }
        if let node = fields["tolerationSeconds"] {
            _ = integer(node, at: "\(path).tolerationSeconds", from: 0)
            if fields["effect"].flatMap({ $0.string }) != "NoExecute" {
                problem("\(path).tolerationSeconds", node, "only with effect NoExecute")
            }
        }
        return problems.count == before ? json(node, at: path) : nil
    }

    mutating func spreadConstraint(_ node: Node, at path: String) -> JSONValue? {
        let keys = [
            "maxSkew", "topologyKey", "whenUnsatisfiable", "labelSelector", "minDomains", "nodeAffinityPolicy",
            "nodeTaintsPolicy", "matchLabelKeys",
        ]
        guard let fields = mapping(node, at: path, keys: keys) else { return nil }
        let before = problems.count
        if let skew = fields["maxSkew"] {
            _ = integer(skew, at: "\(path).maxSkew", from: 1)
        } else {
            problem("\(path).maxSkew", node, "missing")
        }
        if let key = fields["topologyKey"] {
            _ = string(key, at: "\(path).topologyKey")
        } else {
            problem("\(path).topologyKey", node, "missing")
        }
        if let when = fields["whenUnsatisfiable"], let text = string(when, at: "\(path).whenUnsatisfiable") {
            if !["DoNotSchedule", "ScheduleAnyway"].contains(text) {
                problem("\(path).whenUnsatisfiable", when, "must be DoNotSchedule or ScheduleAnyway")
            }
        } else if fields["whenUnsatisfiable"] == nil {
            problem("\(path).whenUnsatisfiable", node, "missing")
        }
        return problems.count == before ? json(node, at: path) : nil
    }

    mutating func variable(_ node: Node, at path: String, seen: inout Set<String>) -> JSONValue? {
        guard let fields = mapping(node, at: path, keys: ["name", "value", "valueFrom"]) else { return nil }
        let before = problems.count
        if let node = fields["name"], let name = string(node, at: "\(path).name") {
            if RunnerJob.ownedEnvironment.contains(name) {
                problem("\(path).name", node, "\(name) is set by the service")
            } else if !seen.insert(name).inserted {
                problem("\(path).name", node, "\(name) is set twice")
            }
        } else if fields["name"] == nil {
            problem("\(path).name", node, "missing")
        }
        switch (fields["value"], fields["valueFrom"]) {
        case (let value?, nil): _ = string(value, at: "\(path).value")
        case (nil, let from?): _ = mapping(from, at: "\(path).valueFrom", keys: nil)
        case (nil, nil): problem(path, node, "needs value or valueFrom")
        case (_?, _?): problem(path, node, "value and valueFrom exclude each other")
        }
        return problems.count == before ? json(node, at: path) : nil
    }

    mutating func volume(_ node: Node, at path: String, names: inout Set<String>) -> JSONValue? {
        guard let fields = mapping(node, at: path, keys: nil) else { return nil }
        let before = problems.count
        if let node = fields["name"], let name = dnsName(node, at: "\(path).name") {
            if RunnerJob.ownedVolumes.contains(name) {
                problem("\(path).name", node, "the service's pods have a volume '\(name)'; take another name")
            } else if !names.insert(name).inserted {
                problem("\(path).name", node, "'\(name)' is the name of an earlier volume too")
            }
        } else if fields["name"] == nil {
            problem("\(path).name", node, "missing")
        }
        let sources = fields.ordered.filter { $0.0 != "name" }
        if sources.count != 1 {
            problem(path, node, "needs exactly one volume source (persistentVolumeClaim, configMap, emptyDir, …)")
        }
        for (key, value) in sources { _ = mapping(value, at: "\(path).\(key)", keys: nil) }
        return problems.count == before ? json(node, at: path) : nil
    }

    /// Paths the service mounts in the runner container.
    static let ownedMountPaths: Set<String> = [
        "/home/runner/_work", "/var/run", "/etc/kube-actions-runner/ca", "/etc/kube-actions-runner/ca-bundle",
    ]

    mutating func volumeMount(_ node: Node, at path: String, volumes: Set<String>) -> JSONValue? {
        let keys = ["name", "mountPath", "readOnly", "subPath", "subPathExpr", "mountPropagation"]
        guard let fields = mapping(node, at: path, keys: keys) else { return nil }
        let before = problems.count
        if let node = fields["name"], let name = string(node, at: "\(path).name") {
            if !volumes.contains(name) {
                problem("\(path).name", node, "'\(name)' is not one of the profile's volumes")
            }
        } else if fields["name"] == nil {
            problem("\(path).name", node, "missing")
        }
        if let node = fields["mountPath"], let mountPath = string(node, at: "\(path).mountPath") {
            if !mountPath.hasPrefix("/") {
                problem("\(path).mountPath", node, "must be an absolute path")
            } else if Self.ownedMountPaths.contains(mountPath) {
                problem("\(path).mountPath", node, "the service mounts \(mountPath)")
            }
        } else if fields["mountPath"] == nil {
            problem("\(path).mountPath", node, "missing")
        }
        if let node = fields["readOnly"], case .scalar(let scalar) = node, scalar.kind != .bool {
            problem("\(path).readOnly", node, "must be true or false")
        }
        return problems.count == before ? json(node, at: path) : nil
    }

    /// A partial pod template: `metadata` (labels, annotations) and `spec`; the service's own labels, annotations
    /// and runner variables cannot be patched (they are put back after the merge anyway).
    mutating func templatePatch(_ node: Node, at path: String) -> JSONValue? {
        guard let fields = mapping(node, at: path, keys: ["metadata", "spec"]) else { return nil }
        let before = problems.count
        if let metadata = fields["metadata"],
            let members = mapping(metadata, at: "\(path).metadata", keys: ["labels", "annotations"])
        {
            for (kind, values) in members.ordered {
                for (key, value) in stringMap(values, at: "\(path).metadata.\(kind)")
                where RunnerJob.isOwnedMetadataKey(key) {
                    _ = value
                    problem("\(path).metadata.\(kind).\(key)", values, "the service sets this key")
                }
            }
        }
        if let spec = fields["spec"], let members = mapping(spec, at: "\(path).spec", keys: nil) {
            for list in ["containers", "initContainers"] {
                guard let containers = members[list], let items = sequence(containers, at: "\(path).spec.\(list)")
                else { continue }
                for (index, item) in items.enumerated() {
                    let itemPath = "\(path).spec.\(list)[\(index)]"
                    guard let container = mapping(item, at: itemPath, keys: nil) else { continue }
                    if container["name"].flatMap({ string($0, at: "\(itemPath).name") }) == nil {
                        problem("\(itemPath).name", item, "missing: containers are merged by name")
                    }
                    guard let env = container["env"], let variables = sequence(env, at: "\(itemPath).env") else {
                        continue
                    }
                    for (envIndex, variable) in variables.enumerated() {
                        let variablePath = "\(itemPath).env[\(envIndex)]"
                        guard let fields = mapping(variable, at: variablePath, keys: nil) else { continue }
                        if let name = fields["name"]?.string, RunnerJob.ownedEnvironment.contains(name) {
                            problem("\(variablePath).name", variable, "\(name) is set by the service")
                        }
                    }
                }
            }
            if let volumes = members["volumes"], let items = sequence(volumes, at: "\(path).spec.volumes") {
                for (index, item) in items.enumerated() {
                    if let name = item["name"]?.string, RunnerJob.ownedVolumes.contains(name) {
                        problem("\(path).spec.volumes[\(index)].name", item, "the service's volume '\(name)'")
                    }
                }
            }
        }
        guard problems.count == before else { return nil }
        return json(node, at: path)
    }

    // MARK: - Custom backends and warm pools

    /// `backend: {resource, template, secret}`: the resource's plural, the object (its `apiVersion` and `kind` name
    /// the resource), and the runner Secret's entries (key: text, `${JIT_CONFIG}` in one of them).
    mutating func backend(_ node: Node, at path: String) -> CustomBackend? {
        guard let fields = mapping(node, at: path, keys: ["resource", "template", "secret"]) else { return nil }
        let before = problems.count
        let plural = fields["resource"].flatMap { dnsName($0, at: "\(path).resource") }
        if fields["resource"] == nil {
            problem("\(path).resource", node, "missing: the resource's plural name (virtualmachineinstances)")
        }
        guard let templateNode = fields["template"] else {
            problem("\(path).template", node, "missing: the object to make for each runner")
            return nil
        }
        _ = mapping(templateNode, at: "\(path).template", keys: nil)
        let template = json(templateNode, at: "\(path).template")
        var secret = CustomBackend.defaultSecretData
        if let node = fields["secret"] {
            secret = stringMap(node, at: "\(path).secret").map { CustomBackend.SecretEntry(key: $0.0, text: $0.1) }
        }
        guard problems.count == before, let plural else { return nil }
        guard case .string(let apiVersion)? = template["apiVersion"], case .string(let kind)? = template["kind"],
            let resource = KubernetesResource(apiVersion: apiVersion, kind: kind, plural: plural)
        else {
            problem("\(path).template", templateNode, "needs apiVersion (group/version) and kind")
            return nil
        }
        do {
            return try CustomBackend(resource: resource, template: template, secretData: secret)
        } catch {
            for message in error.problems {
                // Each names its place from `template` or `secret` on: `template.metadata.name: …`.
                let parts = message.split(separator: ":", maxSplits: 1)
                let detail = parts.count == 2 ? String(parts[1]).trimmingOWS() : message
                problem("\(path).\(parts[0])", templateNode, detail)
            }
            return nil
        }
    }

    /// `warmPool: {minIdle, repositories}`.
    mutating func warmPool(_ node: Node, at path: String, into profile: inout ProfilesFile.Profile) {
        guard let fields = mapping(node, at: path, keys: ["minIdle", "repositories"]) else { return }
        if let node = fields["minIdle"] {
            profile.minIdle = integer(node, at: "\(path).minIdle", from: 0) ?? 0
        } else {
            problem("\(path).minIdle", node, "missing: how many idle runners to keep in each repository")
        }
        guard let node = fields["repositories"] else {
            problem("\(path).repositories", node, "missing: where its runners wait (owner/repo)")
            return
        }
        for (index, text) in strings(node, at: "\(path).repositories").enumerated() {
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && !$0.contains("*") }) else {
                problem("\(path).repositories[\(index)]", node, "'\(text)' is not owner/repo")
                continue
            }
            profile.warmRepositories.append(.init(owner: String(parts[0]), name: String(parts[1])))
        }
    }

    // MARK: - Shapes

    /// A mapping's entries by key (and in order); with `keys`, any other key is a problem.
    mutating func mapping(_ node: Node, at path: String, keys: [String]?) -> Members? {
        guard case .mapping(let mapping) = node else {
            problem(path, node, "must be a mapping")
            return nil
        }
        var members = Members()
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                problem(path, key, "keys must be text")
                continue
            }
            let name = scalar.string
            if let keys, !keys.contains(name) {
                problem(
                    path.isEmpty ? name : "\(path).\(name)",
                    key,
                    "unknown key; known: \(keys.joined(separator: ", "))"
                )
                continue
            }
            if members[name] != nil {
                problem(path.isEmpty ? name : "\(path).\(name)", key, "given twice")
                continue
            }
            members.ordered.append((name, value))
        }
        return members
    }

    mutating func sequence(_ node: Node, at path: String) -> [Node]? {
        guard case .sequence(let sequence) = node else {
            problem(path, node, "must be a list")
            return nil
        }
        return Array(sequence)
    }

    mutating func objects(
        _ node: Node,
        at path: String,
        _ read: (inout NodeReader, Node, String) -> JSONValue?
    ) -> [JSONValue] {
        guard let items = sequence(node, at: path) else { return [] }
        return items.enumerated().compactMap { index, item in read(&self, item, "\(path)[\(index)]") }
    }

    mutating func string(_ node: Node, at path: String) -> String? {
        guard case .scalar(let scalar) = node, scalar.kind != .null else {
            problem(path, node, "must be text")
            return nil
        }
        if [Tag.Name.int, .bool, .float].contains(scalar.kind) {
            problem(path, node, "must be text: quote '\(scalar.string)'")
            return nil
        }
        return scalar.string
    }

    mutating func strings(_ node: Node, at path: String) -> [String] {
        guard let items = sequence(node, at: path) else { return [] }
        return items.enumerated().compactMap { index, item in string(item, at: "\(path)[\(index)]") }
    }

    mutating func stringMap(_ node: Node, at path: String) -> [(String, String)] {
        guard let members = mapping(node, at: path, keys: nil) else { return [] }
        return members.ordered.compactMap { key, value in string(value, at: "\(path).\(key)").map { (key, $0) } }
    }

    mutating func integer(_ node: Node, at path: String, from lowest: Int) -> Int? {
        guard case .scalar(let scalar) = node, scalar.kind == .int, let value = Int(scalar.string),
            value >= lowest
        else {
            problem(path, node, "must be a whole number of at least \(lowest)")
            return nil
        }
        return value
    }

    mutating func image(_ node: Node, at path: String) -> String? {
        guard let text = string(node, at: path) else { return nil }
        if text.isEmpty || text.contains(where: { $0 == " " || $0 == "\t" || $0 == "\n" }) {
            problem(path, node, "not an image reference")
            return nil
        }
        return text
    }

    /// A Kubernetes object name (DNS subdomain: lowercase alphanumerics, `-` and `.`, at most 253), checked as the
    /// environment's object names are (`isDNSSubdomain`).
    mutating func dnsName(_ node: Node, at path: String) -> String? {
        guard let text = string(node, at: path) else { return nil }
        let valid = isDNSSubdomain(text)
        if !valid { problem(path, node, "'\(text)' is not a Kubernetes name (lowercase a-z, 0-9, '-', '.')") }
        return valid ? text : nil
    }

    /// Any value as JSON; numbers with a fraction and anchors are problems (Kubernetes fields here are integers or
    /// text).
    mutating func json(_ node: Node, at path: String) -> JSONValue {
        switch node {
        case .scalar(let scalar):
            switch scalar.kind {
            case .int: return Int(scalar.string).map(JSONValue.int) ?? .string(scalar.string)
            case .bool: return .bool(node.bool ?? false)
            case .null: return .null
            case .float:
                problem(path, node, "a number with a fraction: quote it, or write a whole number")
                return .null
            default: return .string(scalar.string)
            }
        case .mapping(let mapping):
            var members: [(String, JSONValue)] = []
            for (key, value) in mapping {
                let name = key.string ?? ""
                members.append((name, json(value, at: "\(path).\(name)")))
            }
            return .object(members)
        case .sequence(let sequence):
            return .array(sequence.enumerated().map { index, item in json(item, at: "\(path)[\(index)]") })
        case .alias:
            problem(path, node, "anchors and aliases are not supported")
            return .null
        }
    }
}

/// A mapping's entries, in order, with look-up by key.
private struct Members {
    var ordered: [(String, Node)] = []

    subscript(key: String) -> Node? {
        ordered.first { $0.0 == key }?.1
    }
}

extension Node.Scalar {
    /// The tag the resolver gave the scalar (`int`, `bool`, `null`, `float`, `str`, …).
    fileprivate var kind: Tag.Name { Resolver.default.resolveTag(of: .scalar(self)) }
}
