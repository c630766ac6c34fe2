import Support

/// Runner pods and the events of Jobs that could not make theirs.
extension KubernetesClient {
    package func listPods(namespace: String, labelSelector: String) async throws(KubernetesAPIError) -> [PodSummary] {
        let list = try await call(
            KubernetesRequest(
                verb: "list",
                resource: "pods",
                namespace: namespace,
                query: [("labelSelector", labelSelector)]
            ),
            as: PodList.self
        )
        return list.items.map { item in
            let statuses = (item.status?.containerStatuses ?? []) + (item.status?.initContainerStatuses ?? [])
            let scheduled = item.status?.conditions?.first { $0.type == "PodScheduled" }
            func summary(_ status: PodList.Item.PodStatus.ContainerStatus, isInit: Bool) -> ContainerSummary {
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
                containers: containers,
                labels: item.metadata.labels ?? [:]
            )
        }
    }

    package func deletePod(name: String, namespace: String, uid: String?) async throws(KubernetesAPIError) {
        var fields: [(String, JSONValue)] = [("kind", "DeleteOptions"), ("apiVersion", "v1")]
        if let uid { fields.append(("preconditions", .object([("uid", .string(uid))]))) }
        try await send(
            KubernetesRequest(
                verb: "delete",
                resource: "pods",
                namespace: namespace,
                name: name,
                body: .object(fields)
            )
        )
    }

    private struct PodList: KubernetesAnswer {
        static let expected = "the answer is not a PodList"
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

    package func listFailedCreateEvents(namespace: String) async throws(KubernetesAPIError) -> [JobEvent] {
        let list = try await call(
            KubernetesRequest(
                verb: "list",
                resource: "events",
                namespace: namespace,
                query: [("fieldSelector", "involvedObject.kind=Job,reason=FailedCreate")]
            ),
            as: EventList.self
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

    private struct EventList: KubernetesAnswer {
        static let expected = "the answer is not an EventList"
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
}
