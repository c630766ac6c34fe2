import Logging
import Support
import Synchronization

/// Kubernetes as `DRY_RUN=true` sees it: objects are kept in memory (with AlreadyExists and owner-reference
/// deletion, like the API server) and logged instead of sent, so the real provisioning flow runs unchanged.
package final class DryRunKubernetes: KubernetesAPI {
    /// An object that would have been created, in creation order.
    package struct Created: Sendable {
        package var kind: String
        package var name: String
        package var manifest: JSONValue
    }

    private struct State {
        var objects: [Created] = []
        var uids: [String: String] = [:]  // job name -> uid
    }

    private let logger: Logger
    private let state = Mutex(State())
    private let objects = InMemoryObjects()

    package init(logger: Logger) {
        self.logger = logger
    }

    /// Everything created so far (Jobs and Secrets), oldest first.
    package var created: [Created] { state.withLock { $0.objects } }

    package func createJob(_ manifest: JSONValue, namespace: String) async throws(KubernetesAPIError) -> CreatedObject {
        guard case .string(let name)? = manifest["metadata"]?["name"] else {
            throw KubernetesAPIError(
                kind: .invalid,
                verb: "create",
                resource: "jobs.batch",
                namespace: namespace,
                status: 422,
                message: "metadata.name: Required value"
            )
        }
        let uid = state.withLock { state -> String? in
            guard state.uids[name] == nil else { return nil }
            let uid = "dry-run-uid-\(state.uids.count + 1)"
            state.uids[name] = uid
            state.objects.append(Created(kind: "Job", name: name, manifest: manifest))
            return uid
        }
        guard let uid else {
            throw KubernetesAPIError(
                kind: .alreadyExists,
                verb: "create",
                resource: "jobs.batch",
                namespace: namespace,
                status: 409,
                message: "jobs.batch \"\(name)\" already exists"
            )
        }
        logger.info(
            "dry run: Job not sent to Kubernetes",
            metadata: ["runner_job": "\(name)", "namespace": "\(namespace)"]
        )
        logger.debug("dry run: Job manifest", metadata: ["manifest": "\(manifest.rendered())"])
        return CreatedObject(name: name, uid: uid)
    }

    package func createObject(
        _ manifest: JSONValue,
        resource: KubernetesResource,
        namespace: String
    ) async throws(KubernetesAPIError) -> CreatedObject {
        func refusal(_ kind: KubernetesAPIError.Kind, _ status: Int, _ message: String) -> KubernetesAPIError {
            KubernetesAPIError(
                kind: kind,
                verb: "create",
                resource: resource.resourceName,
                namespace: namespace,
                status: status,
                message: message
            )
        }
        guard case .string(let name)? = manifest["metadata"]?["name"] else {
            throw refusal(.invalid, 422, "metadata.name: Required value")
        }
        let uid = state.withLock { state -> String? in
            guard state.uids[name] == nil else { return nil }
            let uid = "dry-run-uid-\(state.uids.count + 1)"
            state.uids[name] = uid
            state.objects.append(Created(kind: resource.kind, name: name, manifest: manifest))
            return uid
        }
        guard let uid else { throw refusal(.alreadyExists, 409, "\(resource.resourceName) \"\(name)\" already exists") }
        logger.info(
            "dry run: runner object not sent to Kubernetes",
            metadata: ["object": "\(name)", "kind": "\(resource.kind)", "namespace": "\(namespace)"]
        )
        return CreatedObject(name: name, uid: uid)
    }

    package func deleteObject(
        name: String,
        resource: KubernetesResource,
        namespace: String,
        uid: String?
    ) async throws(KubernetesAPIError) {
        try await deleteJob(name: name, namespace: namespace, uid: uid)
    }

    package func listObjects(
        resource: KubernetesResource,
        namespace: String,
        labelSelector: String
    ) async throws(KubernetesAPIError) -> [ObjectSummary] {
        state.withLock { state in
            state.objects.filter { $0.kind == resource.kind }.map {
                ObjectSummary(name: $0.name, labels: labels(of: $0.manifest), uid: state.uids[$0.name])
            }
        }
    }

    package func createSecret(_ manifest: JSONValue, namespace: String) async throws(KubernetesAPIError) {
        guard case .string(let name)? = manifest["metadata"]?["name"] else { return }
        state.withLock { $0.objects.append(Created(kind: "Secret", name: name, manifest: manifest)) }
        logger.info(
            "dry run: Secret not sent to Kubernetes",
            metadata: ["secret": "\(name)", "namespace": "\(namespace)"]
        )
    }

    package func deleteJob(name: String, namespace: String, uid: String?) async throws(KubernetesAPIError) {
        state.withLock { state in
            guard uid == nil || state.uids[name] == uid else { return }
            state.uids[name] = nil
            state.objects.removeAll { $0.name == name }
        }
    }

    package func listJobs(
        namespace: String,
        labelSelector: String,
        limit: Int?
    ) async throws(KubernetesAPIError)
        -> [JobSummary]
    {
        state.withLock { state in
            state.objects.filter { $0.kind == "Job" }.map {
                JobSummary(name: $0.name, labels: labels(of: $0.manifest), isFinished: false, uid: state.uids[$0.name])
            }
        }
    }

    package func job(named name: String, namespace: String) async throws(KubernetesAPIError) -> JobIdentity? {
        state.withLock { state in
            guard let uid = state.uids[name],
                let job = state.objects.first(where: { $0.kind == "Job" && $0.name == name })
            else { return nil }
            return JobIdentity(uid: uid, annotations: strings(job.manifest["metadata"]?["annotations"]))
        }
    }

    package func listPods(namespace: String, labelSelector: String) async throws(KubernetesAPIError) -> [PodSummary] {
        []
    }

    package func deletePod(name: String, namespace: String, uid: String?) async throws(KubernetesAPIError) {}

    package func listFailedCreateEvents(namespace: String) async throws(KubernetesAPIError) -> [JobEvent] { [] }

    package func listSecrets(
        namespace: String,
        labelSelector: String
    ) async throws(KubernetesAPIError) -> [SecretSummary] {
        state.withLock { state in
            state.objects.filter { $0.kind == "Secret" }.map {
                SecretSummary(name: $0.name, labels: labels(of: $0.manifest), ownerUID: state.uids[$0.name])
            }
        }
    }

    private func labels(of manifest: JSONValue) -> [String: String] {
        strings(manifest["metadata"]?["labels"])
    }

    /// An object of strings (labels, annotations) as a dictionary.
    private func strings(_ value: JSONValue?) -> [String: String] {
        guard case .object(let fields)? = value else { return [:] }
        var strings: [String: String] = [:]
        for (key, value) in fields {
            if case .string(let text) = value { strings[key] = text }
        }
        return strings
    }

    package func lease(name: String, namespace: String) async throws(KubernetesAPIError) -> Lease? {
        objects.lease(name: name)
    }

    package func createLease(_ lease: Lease, namespace: String) async throws(KubernetesAPIError) -> Lease {
        try objects.createLease(lease, namespace: namespace)
    }

    package func updateLease(_ lease: Lease, namespace: String) async throws(KubernetesAPIError) -> Lease {
        try objects.updateLease(lease, namespace: namespace)
    }

    package func configMap(name: String, namespace: String) async throws(KubernetesAPIError) -> ConfigMapData? {
        objects.configMap(name: name)
    }

    package func saveConfigMap(
        name: String,
        namespace: String,
        _ configMap: ConfigMapData
    ) async throws(KubernetesAPIError) {
        try objects.saveConfigMap(name: name, namespace: namespace, configMap)
    }
}
