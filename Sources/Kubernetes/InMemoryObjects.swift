import Synchronization

/// Leases and ConfigMaps kept in memory with resource versions and the API server's conflict rules; the dry-run
/// backend and the test fakes share it.
package final class InMemoryObjects: Sendable {
    private struct State {
        var leases: [String: Lease] = [:]
        var configMaps: [String: ConfigMapData] = [:]
        var version = 0
    }

    private let state = Mutex(State())

    package init() {}

    private static func conflict(_ verb: String, _ resource: String, _ namespace: String) -> KubernetesAPIError {
        KubernetesAPIError(
            kind: .conflict,
            verb: verb,
            resource: resource,
            namespace: namespace,
            status: 409,
            message: "the object has been modified; please apply your changes to the latest version and try again"
        )
    }

    package func lease(name: String) -> Lease? {
        state.withLock { $0.leases[name] }
    }

    package func createLease(_ lease: Lease, namespace: String) throws(KubernetesAPIError) -> Lease {
        let result = state.withLock { state -> Lease? in
            guard state.leases[lease.name] == nil else { return nil }
            state.version += 1
            var created = lease
            created.resourceVersion = String(state.version)
            state.leases[lease.name] = created
            return created
        }
        guard let result else {
            throw KubernetesAPIError(
                kind: .alreadyExists,
                verb: "create",
                resource: "leases.coordination.k8s.io",
                namespace: namespace,
                status: 409,
                message: "leases.coordination.k8s.io \"\(lease.name)\" already exists"
            )
        }
        return result
    }

    package func updateLease(_ lease: Lease, namespace: String) throws(KubernetesAPIError) -> Lease {
        let result = state.withLock { state -> Lease? in
            guard let current = state.leases[lease.name], current.resourceVersion == lease.resourceVersion else {
                return nil
            }
            state.version += 1
            var updated = lease
            updated.resourceVersion = String(state.version)
            state.leases[lease.name] = updated
            return updated
        }
        guard let result else { throw Self.conflict("update", "leases.coordination.k8s.io", namespace) }
        return result
    }

    package func configMap(name: String) -> ConfigMapData? {
        state.withLock { $0.configMaps[name] }
    }

    package func saveConfigMap(name: String, namespace: String, _ configMap: ConfigMapData) throws(KubernetesAPIError) {
        let saved = state.withLock { state -> Bool in
            guard state.configMaps[name]?.resourceVersion == configMap.resourceVersion else { return false }
            state.version += 1
            state.configMaps[name] = ConfigMapData(resourceVersion: String(state.version), data: configMap.data)
            return true
        }
        guard saved else {
            throw Self.conflict(configMap.resourceVersion == nil ? "create" : "update", "configmaps", namespace)
        }
    }
}
