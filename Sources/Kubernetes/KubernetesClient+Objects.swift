import Support

/// Objects of a custom runner backend: any namespaced resource, named by the backend's configuration. The Role
/// granting them is the user's to add (README, "Custom backends"), so these calls name their resource at run time.
extension KubernetesClient {
    package func createObject(
        _ manifest: JSONValue,
        resource: KubernetesResource,
        namespace: String
    ) async throws(KubernetesAPIError) -> CreatedObject {
        let created = try await call(
            KubernetesRequest(
                verb: "create",
                resource: resource.resourceName,
                version: resource.version,
                namespace: namespace,
                query: [KubernetesRequest.fieldManager],
                body: manifest
            ),
            as: CreatedObjectAnswer.self
        )
        return CreatedObject(name: created.metadata.name, uid: created.metadata.uid)
    }

    private struct CreatedObjectAnswer: KubernetesAnswer {
        static let expected = "the created object has no metadata.uid"
        struct Metadata: Decodable {
            var name: String
            var uid: String
        }
        var metadata: Metadata
    }

    package func deleteObject(
        name: String,
        resource: KubernetesResource,
        namespace: String,
        uid: String?
    ) async throws(KubernetesAPIError) {
        var fields: [(String, JSONValue)] = [
            ("kind", "DeleteOptions"), ("apiVersion", "v1"), ("propagationPolicy", "Background"),
        ]
        if let uid { fields.append(("preconditions", .object([("uid", .string(uid))]))) }
        try await send(
            KubernetesRequest(
                verb: "delete",
                resource: resource.resourceName,
                version: resource.version,
                namespace: namespace,
                name: name,
                body: .object(fields)
            )
        )
    }

    /// The objects with these labels, as metadata only, in chunks.
    package func listObjects(
        resource: KubernetesResource,
        namespace: String,
        labelSelector: String
    ) async throws(KubernetesAPIError) -> [ObjectSummary] {
        try await listMetadata(
            KubernetesRequest(
                verb: "list",
                resource: resource.resourceName,
                version: resource.version,
                namespace: namespace,
                query: [("labelSelector", labelSelector)]
            ),
            limit: nil
        ).map {
            ObjectSummary(
                name: $0.name,
                labels: $0.labels ?? [:],
                createdAt: $0.creationTimestamp.flatMap(Timestamps.parse),
                uid: $0.uid
            )
        }
    }
}
