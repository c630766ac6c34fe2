import Support

/// Runner Jobs and their Secrets.
extension KubernetesClient {
    /// The API server answers with the whole Job (with `managedFields`, 8 KB); its name and uid are read without
    /// decoding the rest (`JSONFields`), and only an answer that is not that simple is decoded in full.
    package func createJob(_ manifest: JSONValue, namespace: String) async throws(KubernetesAPIError) -> CreatedObject {
        let request = KubernetesRequest(
            verb: "create",
            resource: "jobs.batch",
            namespace: namespace,
            query: [KubernetesRequest.fieldManager],
            body: manifest
        )
        let response = try await send(request)
        if let fields = JSONFields(response.body, paths: Self.createdJobFields),
            let name = fields.string(0), let uid = fields.string(1)
        {
            return CreatedObject(name: name, uid: uid)
        }
        let created = try Self.decode(response, of: request, as: CreatedJob.self)
        return CreatedObject(name: created.metadata.name, uid: created.metadata.uid)
    }

    /// `metadata` itself too, so that an answer repeating it goes to the full decoder.
    private static let createdJobFields = JSONFields.Paths([["metadata", "name"], ["metadata", "uid"], ["metadata"]])

    private struct CreatedJob: KubernetesAnswer {
        static let expected = "the created Job has no metadata.uid"
        struct Metadata: Decodable {
            var name: String
            var uid: String
        }
        var metadata: Metadata
    }

    package func deleteJob(name: String, namespace: String, uid: String?) async throws(KubernetesAPIError) {
        var fields: [(String, JSONValue)] = [
            ("kind", "DeleteOptions"), ("apiVersion", "v1"), ("propagationPolicy", "Background"),
        ]
        if let uid { fields.append(("preconditions", .object([("uid", .string(uid))]))) }
        try await send(
            KubernetesRequest(
                verb: "delete",
                resource: "jobs.batch",
                namespace: namespace,
                name: name,
                body: .object(fields)
            )
        )
    }

    /// The runner Jobs, read as metadata only (`PartialObjectMetadataList`: no pod template, no status), in chunks.
    ///
    /// Which have succeeded comes from a second metadata-only list with the field selector `status.successful=1`
    /// (the one status field the API server can select Jobs by), so memory grows with the number of Jobs, not
    /// their size. A Job that failed is not told apart from a running one here: the reconciler tells it from its
    /// pods (a runner Job has one try, so a Job whose runner container ended is over).
    package func listJobs(
        namespace: String,
        labelSelector: String,
        limit: Int?
    ) async throws(KubernetesAPIError)
        -> [JobSummary]
    {
        if let limit, limit <= 0 { return [] }  // limit=0 would mean "no limit" to the API server
        let all = try await listMetadata(
            KubernetesRequest(
                verb: "list",
                resource: "jobs.batch",
                namespace: namespace,
                query: [("labelSelector", labelSelector)]
            ),
            limit: limit
        )
        let succeeded = try await listMetadata(
            KubernetesRequest(
                verb: "list",
                resource: "jobs.batch",
                namespace: namespace,
                query: [("labelSelector", labelSelector), ("fieldSelector", "status.successful=1")]
            ),
            limit: nil
        )
        let finished = Set(succeeded.map(\.name))
        return all.map { item in
            JobSummary(
                name: item.name,
                labels: item.labels ?? [:],
                isFinished: finished.contains(item.name),
                createdAt: item.creationTimestamp.flatMap(Timestamps.parse),
                uid: item.uid
            )
        }
    }

    /// A metadata-only list selecting the one name (`fieldSelector=metadata.name=…`), so the call needs the `list`
    /// the service is granted already, not `get`.
    package func job(named name: String, namespace: String) async throws(KubernetesAPIError) -> JobIdentity? {
        let items = try await listMetadata(
            KubernetesRequest(
                verb: "list",
                resource: "jobs.batch",
                namespace: namespace,
                query: [("fieldSelector", "metadata.name=\(name)")]
            ),
            limit: 1
        )
        guard let item = items.first(where: { $0.name == name }), let uid = item.uid else { return nil }
        return JobIdentity(uid: uid, annotations: item.annotations ?? [:])
    }

    package func createSecret(_ manifest: JSONValue, namespace: String) async throws(KubernetesAPIError) {
        try await send(
            KubernetesRequest(
                verb: "create",
                resource: "secrets",
                namespace: namespace,
                query: [KubernetesRequest.fieldManager],
                body: manifest
            )
        )
    }

    /// The Secrets matching `labelSelector`, read as metadata only (`PartialObjectMetadataList`), so no Secret's
    /// data is ever read back, and in chunks of `listPageSize`: names, labels and the owner's uid.
    package func listSecrets(
        namespace: String,
        labelSelector: String
    ) async throws(KubernetesAPIError) -> [SecretSummary] {
        let secrets = try await listMetadata(
            KubernetesRequest(
                verb: "list",
                resource: "secrets",
                namespace: namespace,
                query: [("labelSelector", labelSelector)]
            ),
            limit: nil
        )
        return secrets.map {
            SecretSummary(name: $0.name, labels: $0.labels ?? [:], ownerUID: $0.ownerReferences?.first?.uid)
        }
    }
}
