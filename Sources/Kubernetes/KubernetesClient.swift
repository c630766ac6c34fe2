import HTTPClient
import Support
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `KubernetesAPI` over an `HTTPTransport`: JSON bodies, bearer token (re-read from its file on every call,
/// since projected service-account tokens rotate), and `metav1.Status` errors turned into `KubernetesAPIError`.
package final class KubernetesClient: KubernetesAPI {
    private let connection: KubernetesConnection
    private let transport: any HTTPTransport
    private let files: any FileReading
    private let timeout: Duration
    /// After a 429 with `Retry-After` (or `details.retryAfterSeconds`), no call is made before this instant.
    private let notBefore = Mutex<MonotonicClock.Instant?>(nil)
    private let clock: MonotonicClock

    package init(
        connection: KubernetesConnection,
        transport: any HTTPTransport,
        files: any FileReading = LocalFiles(),
        timeout: Duration = .seconds(4),
        clock: some Clock<Duration> = ContinuousClock()
    ) {
        self.clock = MonotonicClock(clock)
        self.connection = connection
        self.transport = transport
        self.files = files
        self.timeout = timeout
    }

    package func createJob(_ manifest: JSONValue, namespace: String) async throws(KubernetesAPIError) -> CreatedObject {
        let response = try await call(
            "POST",
            "/apis/batch/v1/namespaces/\(namespace)/jobs?fieldManager=kube-actions-runner",
            body: manifest,
            verb: "create",
            resource: "jobs.batch",
            namespace: namespace
        )
        struct Created: Decodable {
            struct Metadata: Decodable {
                var name: String
                var uid: String
            }
            var metadata: Metadata
        }
        let created = try decode(
            Created.self,
            response,
            verb: "create",
            resource: "jobs.batch",
            namespace: namespace,
            what: "the created Job has no metadata.uid"
        )
        return CreatedObject(name: created.metadata.name, uid: created.metadata.uid)
    }

    package func createSecret(_ manifest: JSONValue, namespace: String) async throws(KubernetesAPIError) {
        _ = try await call(
            "POST",
            "/api/v1/namespaces/\(namespace)/secrets?fieldManager=kube-actions-runner",
            body: manifest,
            verb: "create",
            resource: "secrets",
            namespace: namespace
        )
    }

    package func deleteJob(name: String, namespace: String, uid: String?) async throws(KubernetesAPIError) {
        var fields: [(String, JSONValue)] = [
            ("kind", "DeleteOptions"), ("apiVersion", "v1"), ("propagationPolicy", "Background"),
        ]
        if let uid { fields.append(("preconditions", .object([("uid", .string(uid))]))) }
        let options: JSONValue = .object(fields)
        _ = try await call(
            "DELETE",
            "/apis/batch/v1/namespaces/\(namespace)/jobs/\(name)",
            body: options,
            verb: "delete",
            resource: "jobs.batch",
            namespace: namespace
        )
    }

    /// Objects per list request: the API server sends a large list in chunks (`limit` and `continue`), so neither
    /// side holds thousands of objects in one body.
    static let listPageSize = 500

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
        let path = "/apis/batch/v1/namespaces/\(namespace)/jobs?labelSelector=\(percentEncodeQuery(labelSelector))"
        let all = try await listMetadata(path, verb: "list", resource: "jobs.batch", namespace: namespace, limit: limit)
        let finished = Set(
            try await listMetadata(
                path + "&fieldSelector=\(percentEncodeQuery("status.successful=1"))",
                verb: "list",
                resource: "jobs.batch",
                namespace: namespace,
                limit: nil
            ).map(\.name)
        )
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

    /// An object's metadata as a metadata-only list carries it.
    struct ObjectMetadata: Decodable {
        struct Owner: Decodable { var uid: String? }
        var name: String
        var labels: [String: String]?
        var creationTimestamp: String?
        var uid: String?
        var ownerReferences: [Owner]?
    }

    /// Lists `path` (which has its query started) as metadata only, following `continue` tokens up to `limit` items.
    private func listMetadata(
        _ path: String,
        verb: String,
        resource: String,
        namespace: String,
        limit: Int?
    ) async throws(KubernetesAPIError) -> [ObjectMetadata] {
        struct List: Decodable {
            struct ListMetadata: Decodable { var `continue`: String? }
            struct Item: Decodable { var metadata: ObjectMetadata }
            var metadata: ListMetadata?
            var items: [Item]
        }
        var items: [ObjectMetadata] = []
        var token: String?
        repeat {
            let pageSize = min(Self.listPageSize, limit.map { $0 - items.count } ?? Self.listPageSize)
            var page = path + "&limit=\(pageSize)"
            if let token { page += "&continue=\(percentEncodeQuery(token))" }
            let response = try await call(
                "GET",
                page,
                body: nil,
                verb: verb,
                resource: resource,
                namespace: namespace,
                accept: Self.metadataOnly
            )
            let list = try decode(
                List.self,
                response,
                verb: verb,
                resource: resource,
                namespace: namespace,
                what: "the answer is not a PartialObjectMetadataList"
            )
            items += list.items.map(\.metadata)
            token = list.metadata?.continue.flatMap { $0.isEmpty ? nil : $0 }
        } while token != nil && items.count < (limit ?? .max)
        return items
    }

    /// The Secrets matching `labelSelector`, read as metadata only (`PartialObjectMetadataList`), so no Secret's
    /// data is ever read back, and in chunks of `listPageSize`: names, labels and the owner's uid.
    package func listSecrets(
        namespace: String,
        labelSelector: String
    ) async throws(KubernetesAPIError) -> [SecretSummary] {
        let path = "/api/v1/namespaces/\(namespace)/secrets?labelSelector=\(percentEncodeQuery(labelSelector))"
        return try await listMetadata(path, verb: "list", resource: "secrets", namespace: namespace, limit: nil).map {
            SecretSummary(name: $0.name, labels: $0.labels ?? [:], ownerUID: $0.ownerReferences?.first?.uid)
        }
    }

    /// Asks for a list of metadata only (API servers answer it since Kubernetes 1.15).
    static let metadataOnly = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"

    package func listPods(namespace: String, labelSelector: String) async throws(KubernetesAPIError) -> [PodSummary] {
        let response = try await call(
            "GET",
            "/api/v1/namespaces/\(namespace)/pods?labelSelector=\(percentEncodeQuery(labelSelector))",
            body: nil,
            verb: "list",
            resource: "pods",
            namespace: namespace
        )
        struct List: Decodable {
            struct Item: Decodable {
                struct Metadata: Decodable {
                    var name: String
                    var labels: [String: String]?
                    var creationTimestamp: String?
                    var uid: String?
                }
                struct PodStatus: Decodable {
                    struct Condition: Decodable {
                        var type: String
                        var status: String
                        var reason: String?
                        var message: String?
                    }
                    struct ContainerStatus: Decodable {
                        struct State: Decodable {
                            struct Waiting: Decodable { var reason: String? }
                            struct Running: Decodable {}
                            struct Terminated: Decodable {}
                            var waiting: Waiting?
                            var running: Running?
                            var terminated: Terminated?
                        }
                        var name: String?
                        var state: State?
                        var ready: Bool?
                    }
                    var conditions: [Condition]?
                    var containerStatuses: [ContainerStatus]?
                    var initContainerStatuses: [ContainerStatus]?
                }
                var metadata: Metadata
                var status: PodStatus?
            }
            var items: [Item]
        }
        let list = try decode(
            List.self,
            response,
            verb: "list",
            resource: "pods",
            namespace: namespace,
            what: "the answer is not a PodList"
        )
        return list.items.map { item in
            let statuses = (item.status?.containerStatuses ?? []) + (item.status?.initContainerStatuses ?? [])
            let scheduled = item.status?.conditions?.first { $0.type == "PodScheduled" }
            func summary(_ status: List.Item.PodStatus.ContainerStatus, isInit: Bool) -> ContainerSummary {
                ContainerSummary(
                    name: status.name ?? "",
                    isInit: isInit,
                    waitingReason: status.state?.waiting?.reason,
                    isRunning: status.state?.running != nil,
                    isTerminated: status.state?.terminated != nil,
                    isReady: status.ready ?? false
                )
            }
            let containers =
                (item.status?.containerStatuses ?? []).map { summary($0, isInit: false) }
                + (item.status?.initContainerStatuses ?? []).map { summary($0, isInit: true) }
            return PodSummary(
                name: item.metadata.name,
                jobName: item.metadata.labels?["batch.kubernetes.io/job-name"] ?? item.metadata.labels?["job-name"],
                createdAt: item.metadata.creationTimestamp.flatMap(Timestamps.parse),
                waitingReasons: statuses.compactMap { $0.state?.waiting?.reason },
                unschedulable: scheduled.flatMap {
                    $0.status == "False" && $0.reason == "Unschedulable" ? ($0.message ?? "") : nil
                },
                uid: item.metadata.uid,
                containers: containers
            )
        }
    }

    package func listFailedCreateEvents(namespace: String) async throws(KubernetesAPIError) -> [JobEvent] {
        let selector = percentEncodeQuery("involvedObject.kind=Job,reason=FailedCreate")
        let response = try await call(
            "GET",
            "/api/v1/namespaces/\(namespace)/events?fieldSelector=\(selector)",
            body: nil,
            verb: "list",
            resource: "events",
            namespace: namespace
        )
        struct List: Decodable {
            struct Item: Decodable {
                struct Involved: Decodable {
                    var name: String
                    var uid: String?
                }
                var involvedObject: Involved
                var reason: String?
                var message: String?
                var firstTimestamp: String?
                var lastTimestamp: String?
                var eventTime: String?
            }
            var items: [Item]
        }
        let list = try decode(
            List.self,
            response,
            verb: "list",
            resource: "events",
            namespace: namespace,
            what: "the answer is not an EventList"
        )
        return list.items.map {
            JobEvent(
                jobName: $0.involvedObject.name,
                reason: $0.reason ?? "",
                message: $0.message ?? "",
                jobUID: $0.involvedObject.uid,
                lastSeen: ($0.lastTimestamp ?? $0.eventTime ?? $0.firstTimestamp).flatMap(Timestamps.parse)
            )
        }
    }

    // MARK: - Leases and ConfigMaps

    private struct LeaseObject: Decodable {
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

    private func decodeLease(
        _ response: HTTPClientResponse,
        verb: String,
        namespace: String
    ) throws(KubernetesAPIError) -> Lease {
        let object = try decode(
            LeaseObject.self,
            response,
            verb: verb,
            resource: "leases.coordination.k8s.io",
            namespace: namespace,
            what: "the answer is not a Lease"
        )
        return object.lease
    }

    package func lease(name: String, namespace: String) async throws(KubernetesAPIError) -> Lease? {
        do {
            let response = try await call(
                "GET",
                "/apis/coordination.k8s.io/v1/namespaces/\(namespace)/leases/\(name)",
                body: nil,
                verb: "get",
                resource: "leases.coordination.k8s.io",
                namespace: namespace
            )
            return try decodeLease(response, verb: "get", namespace: namespace)
        } catch  where error.kind == .notFound {
            return nil
        }
    }

    package func createLease(_ lease: Lease, namespace: String) async throws(KubernetesAPIError) -> Lease {
        let response = try await call(
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/\(namespace)/leases",
            body: manifest(lease, namespace: namespace),
            verb: "create",
            resource: "leases.coordination.k8s.io",
            namespace: namespace
        )
        return try decodeLease(response, verb: "create", namespace: namespace)
    }

    package func updateLease(_ lease: Lease, namespace: String) async throws(KubernetesAPIError) -> Lease {
        let response = try await call(
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/\(namespace)/leases/\(lease.name)",
            body: manifest(lease, namespace: namespace),
            verb: "update",
            resource: "leases.coordination.k8s.io",
            namespace: namespace
        )
        return try decodeLease(response, verb: "update", namespace: namespace)
    }

    package func configMap(name: String, namespace: String) async throws(KubernetesAPIError) -> ConfigMapData? {
        struct Object: Decodable {
            struct Metadata: Decodable { var resourceVersion: String? }
            var metadata: Metadata
            var data: [String: String]?
        }
        let response: HTTPClientResponse
        do {
            response = try await call(
                "GET",
                "/api/v1/namespaces/\(namespace)/configmaps/\(name)",
                body: nil,
                verb: "get",
                resource: "configmaps",
                namespace: namespace
            )
        } catch  where error.kind == .notFound {
            return nil
        }
        let object = try decode(
            Object.self,
            response,
            verb: "get",
            resource: "configmaps",
            namespace: namespace,
            what: "the answer is not a ConfigMap"
        )
        return ConfigMapData(resourceVersion: object.metadata.resourceVersion, data: object.data ?? [:])
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
            _ = try await call(
                "POST",
                "/api/v1/namespaces/\(namespace)/configmaps",
                body: body,
                verb: "create",
                resource: "configmaps",
                namespace: namespace
            )
        } else {
            _ = try await call(
                "PUT",
                "/api/v1/namespaces/\(namespace)/configmaps/\(name)",
                body: body,
                verb: "update",
                resource: "configmaps",
                namespace: namespace
            )
        }
    }

    // MARK: - Calls

    /// Decodes a 2xx body, or says that the answer was not the documented object.
    private func decode<T: Decodable>(
        _ type: T.Type,
        _ response: HTTPClientResponse,
        verb: String,
        resource: String,
        namespace: String,
        what: String
    ) throws(KubernetesAPIError) -> T {
        guard let value = try? JSONDecoder().decode(type, from: Data(response.body)) else {
            throw KubernetesAPIError(
                kind: .unexpectedResponse,
                verb: verb,
                resource: resource,
                namespace: namespace,
                status: response.status,
                message: what
            )
        }
        return value
    }

    private func call(
        _ method: String,
        _ path: String,
        body: JSONValue?,
        verb: String,
        resource: String,
        namespace: String,
        accept: String = "application/json"
    ) async throws(KubernetesAPIError) -> HTTPClientResponse {
        if let until = notBefore.withLock({ $0 }), clock.now < until {
            throw KubernetesAPIError(
                kind: .unavailable,
                verb: verb,
                resource: resource,
                namespace: namespace,
                status: nil,
                message: "not called: the API server asked to retry later (429 Retry-After)"
            )
        }
        var headers: [(name: String, value: String)] = [
            ("Accept", accept),
            ("User-Agent", "kube-actions-runner/\(KubeActionsRunnerVersion.current)"),
        ]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        switch connection.credentials {
        case .none: break
        case .token(let token): headers.append(("Authorization", "Bearer \(token.value)"))
        case .tokenFile(let path):
            let token: String?
            do {
                token = try files.read(path)
            } catch {
                throw KubernetesAPIError(
                    kind: .unauthorized,
                    verb: verb,
                    resource: resource,
                    namespace: namespace,
                    status: nil,
                    message: "cannot read the token file: \(error)"
                )
            }
            guard let token = token?.trimmingOWS().droppingTrailingNewlines(), !token.isEmpty else {
                throw KubernetesAPIError(
                    kind: .unauthorized,
                    verb: verb,
                    resource: resource,
                    namespace: namespace,
                    status: nil,
                    message: "token file \(path) is missing or empty"
                )
            }
            headers.append(("Authorization", "Bearer \(token)"))
        }
        let request = HTTPClientRequest(
            method: method,
            url: connection.server + path,
            headers: headers,
            body: body.map { $0.renderedBytes() },
            timeout: timeout
        )
        let response: HTTPClientResponse
        do {
            response = try await transport.send(request)
        } catch {
            throw KubernetesAPIError(
                kind: .transport,
                verb: verb,
                resource: resource,
                namespace: namespace,
                status: nil,
                message: error.message
            )
        }
        if (200..<300).contains(response.status) { return response }
        let error = Self.error(for: response, verb: verb, resource: resource, namespace: namespace)
        if response.status == 429 {
            // Honour the API server's Retry-After (priority and fairness): no call from this client until then.
            let seconds = error.retryAfterSeconds ?? 1
            let until = clock.now + .seconds(seconds)
            notBefore.withLock { $0 = max($0 ?? until, until) }
        }
        throw error
    }

    static func error(
        for response: HTTPClientResponse,
        verb: String,
        resource: String,
        namespace: String
    )
        -> KubernetesAPIError
    {
        let status = Status.parse(response.body)
        let kind: KubernetesAPIError.Kind
        switch (response.status, status?.reason) {
        case (409, "AlreadyExists"): kind = .alreadyExists
        case (409, _): kind = .conflict
        case (422, _): kind = .invalid
        case (403, _): kind = .forbidden
        case (401, _): kind = .unauthorized
        case (404, _): kind = .notFound
        case (429, _), (500...599, _): kind = .unavailable
        default: kind = .unexpectedResponse
        }
        let causes = (status?.details?.causes ?? []).map { cause in
            [cause.field, cause.message].compactMap { $0 }.joined(separator: ": ")
        }
        var error = KubernetesAPIError(
            kind: kind,
            verb: verb,
            resource: resource,
            namespace: namespace,
            status: response.status,
            message: status?.message ?? "HTTP \(response.status)",
            causes: causes
        )
        error.retryAfterSeconds =
            response.header("retry-after").flatMap { Int($0) }.map { min(max($0, 0), 600) }
            ?? status?.details?.retryAfterSeconds
        return error
    }
}

/// Percent-encodes a query value (label selectors hold `=`, `,` and `!`); `/` may stay.
func percentEncodeQuery(_ text: String) -> String {
    percentEncode(text, keeping: [UInt8(ascii: "/")])
}
