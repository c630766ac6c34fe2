import Support

/// The service's own state in the cluster: leader election's Lease and the repository registry's ConfigMap.
extension KubernetesClient {
    package func lease(name: String, namespace: String) async throws(KubernetesAPIError) -> Lease? {
        try await callIfFound(
            KubernetesRequest(verb: "get", resource: "leases.coordination.k8s.io", namespace: namespace, name: name),
            as: LeaseObject.self
        )?.lease
    }

    package func createLease(_ lease: Lease, namespace: String) async throws(KubernetesAPIError) -> Lease {
        try await call(
            KubernetesRequest(
                verb: "create",
                resource: "leases.coordination.k8s.io",
                namespace: namespace,
                body: manifest(lease, namespace: namespace)
            ),
            as: LeaseObject.self
        ).lease
    }

    package func updateLease(_ lease: Lease, namespace: String) async throws(KubernetesAPIError) -> Lease {
        try await call(
            KubernetesRequest(
                verb: "update",
                resource: "leases.coordination.k8s.io",
                namespace: namespace,
                name: lease.name,
                body: manifest(lease, namespace: namespace)
            ),
            as: LeaseObject.self
        ).lease
    }

    private struct LeaseObject: KubernetesAnswer {
        static let expected = "the answer is not a Lease"
        struct Metadata: Decodable {
            var name: String
            var resourceVersion: String?
        }
        struct Spec: Decodable {
            var holderIdentity: String?
            var leaseDurationSeconds: Int?
            var acquireTime: String?
            var renewTime: String?
            var leaseTransitions: Int?
        }
        var metadata: Metadata
        var spec: Spec?

        var lease: Lease {
            Lease(
                name: metadata.name,
                resourceVersion: metadata.resourceVersion,
                holderIdentity: spec?.holderIdentity,
                leaseDurationSeconds: spec?.leaseDurationSeconds,
                acquireTime: spec?.acquireTime,
                renewTime: spec?.renewTime,
                leaseTransitions: spec?.leaseTransitions
            )
        }
    }

    private func manifest(_ lease: Lease, namespace: String) -> JSONValue {
        var metadata: [(String, JSONValue)] = [("name", .string(lease.name)), ("namespace", .string(namespace))]
        if let version = lease.resourceVersion { metadata.append(("resourceVersion", .string(version))) }
        var spec: [(String, JSONValue)] = []
        if let holder = lease.holderIdentity { spec.append(("holderIdentity", .string(holder))) }
        if let duration = lease.leaseDurationSeconds { spec.append(("leaseDurationSeconds", .int(duration))) }
        if let time = lease.acquireTime { spec.append(("acquireTime", .string(time))) }
        if let time = lease.renewTime { spec.append(("renewTime", .string(time))) }
        if let count = lease.leaseTransitions { spec.append(("leaseTransitions", .int(count))) }
        return .object([
            ("apiVersion", "coordination.k8s.io/v1"), ("kind", "Lease"), ("metadata", .object(metadata)),
            ("spec", .object(spec)),
        ])
    }

    package func configMap(name: String, namespace: String) async throws(KubernetesAPIError) -> ConfigMapData? {
        let object = try await callIfFound(
            KubernetesRequest(verb: "get", resource: "configmaps", namespace: namespace, name: name),
            as: ConfigMapObject.self
        )
        return object.map { ConfigMapData(resourceVersion: $0.metadata.resourceVersion, data: $0.data ?? [:]) }
    }

    private struct ConfigMapObject: KubernetesAnswer {
        static let expected = "the answer is not a ConfigMap"
        struct Metadata: Decodable { var resourceVersion: String? }
        var metadata: Metadata
        var data: [String: String]?
    }

    package func saveConfigMap(
        name: String,
        namespace: String,
        _ configMap: ConfigMapData
    ) async throws(KubernetesAPIError) {
        var metadata: [(String, JSONValue)] = [
            ("name", .string(name)), ("namespace", .string(namespace)),
            ("labels", .object([("app.kubernetes.io/managed-by", "kube-actions-runner")])),
        ]
        if let version = configMap.resourceVersion { metadata.append(("resourceVersion", .string(version))) }
        let body: JSONValue = .object([
            ("apiVersion", "v1"), ("kind", "ConfigMap"), ("metadata", .object(metadata)),
            ("data", .object(configMap.data.keys.sorted().map { ($0, .string(configMap.data[$0]!)) })),
        ])
        if configMap.resourceVersion == nil {
            try await send(KubernetesRequest(verb: "create", resource: "configmaps", namespace: namespace, body: body))
        } else {
            try await send(
                KubernetesRequest(verb: "update", resource: "configmaps", namespace: namespace, name: name, body: body)
            )
        }
    }
}
