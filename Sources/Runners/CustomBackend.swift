import Kubernetes
import Support

/// A runner made of an object of any namespaced resource instead of a Job: a KubeVirt `VirtualMachineInstance`, a
/// KRO instance such as `PodRunner`, whatever the cluster runs runners with. The object comes from a template; the
/// JIT config stays in the runner's Secret, which the object owns and names by its name only.
///
/// Placeholders (`${NAME}`) are replaced in every string of the template, keys excepted:
/// `RUNNER_NAME` (the object's name, also the Secret's), `SECRET_NAME`, `NAMESPACE`, `RUNNER_LABELS` (the labels the
/// runner registers with, comma-separated), `JOB_ID`, `OWNER`, `REPO`. The Secret's entries take the same, and
/// `JIT_CONFIG`, which only they may hold. The service sets the object's name, namespace, its labels (this
/// deployment's marker, the job's) and annotations, so the reapers find it, whatever the template says of them.
package struct CustomBackend: Sendable, Equatable {
    package var resource: KubernetesResource
    package var template: JSONValue
    /// The runner Secret's entries: key, text.
    package var secretData: [SecretEntry]

    package struct SecretEntry: Sendable, Equatable {
        package var key: String
        package var text: String

        package init(key: String, text: String) {
            self.key = key
            self.text = text
        }
    }

    /// What is wrong with a backend: each problem with the place it was found (`template.metadata.name`).
    package struct Invalid: Error, Equatable, CustomStringConvertible {
        package var problems: [String]
        package var description: String { problems.joined(separator: "; ") }
    }

    package static let placeholders: Set<String> = [
        "RUNNER_NAME", "SECRET_NAME", "NAMESPACE", "RUNNER_LABELS", "JOB_ID", "OWNER", "REPO",
    ]
    package static let jitConfigPlaceholder = "JIT_CONFIG"
    /// The Secret when a backend names no entries: the encoded JIT config under `jitconfig`, as for Jobs.
    package static let defaultSecretData = [SecretEntry(key: RunnerJob.secretKey, text: "${JIT_CONFIG}")]

    /// Checks the template against the resource and the placeholders; every problem is reported at once.
    package init(
        resource: KubernetesResource,
        template: JSONValue,
        secretData: [SecretEntry] = CustomBackend.defaultSecretData
    ) throws(Invalid) {
        var problems: [String] = []
        if case .object = template {} else { problems.append("template: must be an object") }
        if template["apiVersion"] != .string(resource.apiVersion) {
            problems.append("template.apiVersion: must be \(resource.apiVersion), the resource's")
        }
        if template["kind"] != .string(resource.kind) {
            problems.append("template.kind: must be \(resource.kind), the resource's")
        }
        for field in ["name", "namespace", "generateName"] {
            if let value = template["metadata"]?[field], value != .string("${RUNNER_NAME}") {
                problems.append("template.metadata.\(field): set by the service; leave it out")
            }
        }
        for (path, name) in Self.placeholders(in: template, path: "template") {
            if name == Self.jitConfigPlaceholder {
                problems.append("\(path): ${JIT_CONFIG} may appear in the Secret's entries only, never in the object")
            } else if !Self.placeholders.contains(name) {
                problems.append("\(path): unknown placeholder ${\(name)}")
            }
        }
        var keys: Set<String> = []
        for (index, entry) in secretData.enumerated() {
            let path = "secret[\(index)]"
            if !Self.isSecretKey(entry.key) { problems.append("\(path).key: '\(entry.key)' is not a valid Secret key") }
            if !keys.insert(entry.key).inserted { problems.append("\(path).key: '\(entry.key)' twice") }
            for name in Self.names(in: entry.text) where name != Self.jitConfigPlaceholder {
                if !Self.placeholders.contains(name) { problems.append("\(path).text: unknown placeholder ${\(name)}") }
            }
        }
        if !secretData.contains(where: { Self.names(in: $0.text).contains(Self.jitConfigPlaceholder) }) {
            problems.append("secret: no entry holds ${JIT_CONFIG}: the runner would never get its configuration")
        }
        guard problems.isEmpty else { throw Invalid(problems: problems) }
        self.resource = resource
        self.template = template
        self.secretData = secretData
    }

    /// The object for one runner: the template with its placeholders replaced, and the service's metadata.
    func render(
        name: String,
        namespace: String,
        values: [String: String],
        labels: [(String, String)],
        annotations: [(String, JSONValue)]
    ) -> JSONValue {
        guard case .object(var fields) = Self.substitute(template, values) else { return template }
        var metadata: [(String, JSONValue)] = []
        if case .object(let given)? = fields.first(where: { $0.0 == "metadata" })?.1 { metadata = given }
        metadata.removeAll { ["name", "namespace", "generateName"].contains($0.0) }
        metadata.insert(contentsOf: [("name", .string(name)), ("namespace", .string(namespace))], at: 0)
        func merged(_ key: String, _ ours: [(String, JSONValue)]) {
            var entries: [(String, JSONValue)] = []
            if let index = metadata.firstIndex(where: { $0.0 == key }), case .object(let given) = metadata[index].1 {
                entries = given.filter { entry in !ours.contains { $0.0 == entry.0 } }
                metadata.remove(at: index)
            }
            metadata.append((key, .object(entries + ours)))
        }
        merged("labels", labels.map { ($0.0, .string($0.1)) })
        merged("annotations", annotations)
        fields.removeAll { $0.0 == "metadata" }
        fields.insert(("metadata", .object(metadata)), at: min(2, fields.count))
        return .object(fields)
    }

    /// The Secret's entries for one runner, `JIT_CONFIG` included.
    func secretEntries(values: [String: String], jitConfig: String) -> [(String, String)] {
        var all = values
        all[Self.jitConfigPlaceholder] = jitConfig
        return secretData.map { ($0.key, Self.replacing(in: $0.text, all)) }
    }

    // MARK: - Placeholders

    static func substitute(_ value: JSONValue, _ values: [String: String]) -> JSONValue {
        switch value {
        case .string(let text): .string(replacing(in: text, values))
        case .array(let items): .array(items.map { substitute($0, values) })
        case .object(let fields): .object(fields.map { ($0.0, substitute($0.1, values)) })
        default: value
        }
    }

    /// `${NAME}` replaced by its value; an unknown name is left as it is (validation reports it first).
    static func replacing(in text: String, _ values: [String: String]) -> String {
        guard text.contains("${") else { return text }
        var result = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else { break }
            let name = String(rest[start.upperBound..<end])
            result += values[name] ?? "${\(name)}"
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }

    static func names(in text: String) -> [String] {
        var names: [String] = []
        var rest = Substring(text)
        while let start = rest.range(of: "${"), let end = rest[start.upperBound...].firstIndex(of: "}") {
            names.append(String(rest[start.upperBound..<end]))
            rest = rest[rest.index(after: end)...]
        }
        return names
    }

    static func placeholders(in value: JSONValue, path: String) -> [(path: String, name: String)] {
        switch value {
        case .string(let text): names(in: text).map { (path, $0) }
        case .array(let items): items.enumerated().flatMap { placeholders(in: $0.1, path: "\(path)[\($0.0)]") }
        case .object(let fields): fields.flatMap { placeholders(in: $0.1, path: "\(path).\($0.0)") }
        default: []
        }
    }

    /// A Secret data key: `[-._a-zA-Z0-9]+`.
    static func isSecretKey(_ key: String) -> Bool {
        !key.isEmpty
            && key.utf8.allSatisfy {
                ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 46
                    || $0 == 95
            }
    }
}

extension RunnerJob {
    /// Labels a custom backend's object (and so its Secret) with the profile that made it, as `customize` labels a
    /// profile's Job.
    mutating func labelObject(profile: String) {
        let label = (RunnerProfile.profileLabel, RunnerJob.labelValue(profile))
        labels.removeAll { $0.0 == label.0 }
        labels.append(label)
        job = job.updating("metadata") { metadata in
            metadata?.updating("labels") { given in
                .object((given?.members ?? []).filter { $0.0 != label.0 } + [(label.0, .string(label.1))])
            }
        }
    }
}

extension KubernetesAPI {
    /// Creates a runner's object: its Job, or its custom backend's object.
    func createRunnerObject(_ runner: RunnerJob) async throws(KubernetesAPIError) -> CreatedObject {
        if let resource = runner.resource {
            return try await createObject(runner.job, resource: resource, namespace: runner.namespace)
        }
        return try await createJob(runner.job, namespace: runner.namespace)
    }

    /// Deletes exactly that runner object (`uid`), a Job when `resource` is nil; what it owns goes with it.
    func deleteRunnerObject(
        name: String,
        resource: KubernetesResource?,
        namespace: String,
        uid: String?
    ) async throws(KubernetesAPIError) {
        if let resource {
            try await deleteObject(name: name, resource: resource, namespace: namespace, uid: uid)
        } else {
            try await deleteJob(name: name, namespace: namespace, uid: uid)
        }
    }
}
