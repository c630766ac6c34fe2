import Support

/// The identity the API server gave a created object.
package struct CreatedObject: Sendable, Equatable {
    package var name: String
    package var uid: String

    package init(name: String, uid: String) {
        self.name = name
        self.uid = uid
    }
}

/// What the service needs to know of a runner Job it listed.
package struct JobSummary: Sendable, Equatable {
    package var name: String
    package var labels: [String: String]
    /// A `Complete` or `Failed` condition is true.
    package var isFinished: Bool
    /// `metadata.creationTimestamp`, seconds since the epoch (the API server's clock: compare it only with other
    /// API server times, never with the local clock).
    package var createdAt: Double?
    /// `metadata.uid`: which object exactly (a Job deleted and created again under its name has another).
    package var uid: String?
    /// A custom backend's object standing for a Job: its resource; nil for a Job.
    package var resource: KubernetesResource?

    package init(
        name: String,
        labels: [String: String],
        isFinished: Bool,
        createdAt: Double? = nil,
        uid: String? = nil,
        resource: KubernetesResource? = nil
    ) {
        self.name = name
        self.labels = labels
        self.isFinished = isFinished
        self.createdAt = createdAt
        self.uid = uid
        self.resource = resource
    }
}

/// A Job found by its name: which object exactly, and its annotations.
package struct JobIdentity: Sendable, Equatable {
    package var uid: String
    package var annotations: [String: String]

    package init(uid: String, annotations: [String: String]) {
        self.uid = uid
        self.annotations = annotations
    }
}

/// What the reapers need to know of a runner Secret: the registration its Job was made for, in its labels.
package struct SecretSummary: Sendable, Equatable {
    package var name: String
    package var labels: [String: String]
    /// The owning Job's uid (`ownerReferences`), when it has one.
    package var ownerUID: String?

    package init(name: String, labels: [String: String], ownerUID: String? = nil) {
        self.name = name
        self.labels = labels
        self.ownerUID = ownerUID
    }
}

/// The state of one container of a runner pod.
package struct ContainerSummary: Sendable, Equatable {
    package var name: String
    /// An init container (the dind native sidecar is one).
    package var isInit: Bool
    /// `state.waiting.reason`.
    package var waitingReason: String?
    package var isRunning: Bool
    package var isTerminated: Bool
    /// `ready` (for a sidecar with a startup probe: the probe passed).
    package var isReady: Bool

    package init(
        name: String,
        isInit: Bool = false,
        waitingReason: String? = nil,
        isRunning: Bool = false,
        isTerminated: Bool = false,
        isReady: Bool = false
    ) {
        self.name = name
        self.isInit = isInit
        self.waitingReason = waitingReason
        self.isRunning = isRunning
        self.isTerminated = isTerminated
        self.isReady = isReady
    }
}

/// What the reaper needs to know of a runner pod.
package struct PodSummary: Sendable, Equatable {
    package var name: String
    /// The Job that owns it (label `batch.kubernetes.io/job-name`).
    package var jobName: String?
    package var createdAt: Double?
    /// `state.waiting.reason` of each container that is waiting (init containers included).
    package var waitingReasons: [String]
    /// `PodScheduled` is `False` with reason `Unschedulable`; the condition's message.
    package var unschedulable: String?
    package var uid: String?
    /// Every container's state (init containers included).
    package var containers: [ContainerSummary]
    /// `metadata.labels`.
    package var labels: [String: String]

    package init(
        name: String,
        jobName: String?,
        createdAt: Double?,
        waitingReasons: [String],
        unschedulable: String?,
        uid: String? = nil,
        containers: [ContainerSummary] = [],
        labels: [String: String] = [:]
    ) {
        self.name = name
        self.jobName = jobName
        self.createdAt = createdAt
        self.waitingReasons = waitingReasons
        self.unschedulable = unschedulable
        self.uid = uid
        self.containers = containers
        self.labels = labels
    }
}

/// A `FailedCreate` event of a Job: the Job controller could not create its pod (Pod Security, quota, …).
package struct JobEvent: Sendable, Equatable {
    package var jobName: String
    package var reason: String
    package var message: String
    /// `involvedObject.uid`: the Job exactly (a name outlives the Job it once named).
    package var jobUID: String?
    /// When it last happened (`lastTimestamp`, else `eventTime`, else `firstTimestamp`), seconds since the epoch by
    /// the cluster's clock: compared with the Job's pods' creation times only.
    package var lastSeen: Double?

    package init(jobName: String, reason: String, message: String, jobUID: String? = nil, lastSeen: Double? = nil) {
        self.jobName = jobName
        self.reason = reason
        self.message = message
        self.jobUID = jobUID
        self.lastSeen = lastSeen
    }
}

/// A `coordination.k8s.io/v1` Lease, as leader election reads and writes it.
package struct Lease: Sendable, Equatable {
    package var name: String
    /// Set by the API server; an update must carry the one it read (optimistic concurrency).
    package var resourceVersion: String?
    package var holderIdentity: String?
    package var leaseDurationSeconds: Int?
    /// RFC 3339 with microseconds (`MicroTime`).
    package var acquireTime: String?
    package var renewTime: String?
    package var leaseTransitions: Int?

    package init(
        name: String,
        resourceVersion: String? = nil,
        holderIdentity: String?,
        leaseDurationSeconds: Int?,
        acquireTime: String?,
        renewTime: String?,
        leaseTransitions: Int?
    ) {
        self.name = name
        self.resourceVersion = resourceVersion
        self.holderIdentity = holderIdentity
        self.leaseDurationSeconds = leaseDurationSeconds
        self.acquireTime = acquireTime
        self.renewTime = renewTime
        self.leaseTransitions = leaseTransitions
    }
}

/// A ConfigMap's data and version.
package struct ConfigMapData: Sendable, Equatable {
    package var resourceVersion: String?
    package var data: [String: String]

    package init(resourceVersion: String?, data: [String: String]) {
        self.resourceVersion = resourceVersion
        self.data = data
    }
}

/// The Kubernetes calls the service makes, all in one namespace.
package protocol KubernetesAPI: Sendable {
    func createJob(_ manifest: JSONValue, namespace: String) async throws(KubernetesAPIError) -> CreatedObject
    func createSecret(_ manifest: JSONValue, namespace: String) async throws(KubernetesAPIError)
    /// Deletes with `propagationPolicy: Background`, so the pod and the owned Secret go too. With `uid`, only that
    /// very Job (`preconditions.uid`: 409 Conflict when the name now belongs to another).
    func deleteJob(name: String, namespace: String, uid: String?) async throws(KubernetesAPIError)
    func listJobs(
        namespace: String,
        labelSelector: String,
        limit: Int?
    ) async throws(KubernetesAPIError) -> [JobSummary]
    /// The Job of that name, read as metadata only; nil when there is none.
    func job(named name: String, namespace: String) async throws(KubernetesAPIError) -> JobIdentity?
    func listPods(namespace: String, labelSelector: String) async throws(KubernetesAPIError) -> [PodSummary]
    /// Deletes one pod; with `uid`, only that very pod (`preconditions.uid`: 409 Conflict when the name now belongs
    /// to another).
    func deletePod(name: String, namespace: String, uid: String?) async throws(KubernetesAPIError)
    /// `FailedCreate` events of Jobs.
    func listFailedCreateEvents(namespace: String) async throws(KubernetesAPIError) -> [JobEvent]
    /// The Secrets with these labels (names, labels and owner; never their data).
    func listSecrets(namespace: String, labelSelector: String) async throws(KubernetesAPIError) -> [SecretSummary]
    /// A custom backend's object (any namespaced resource).
    func createObject(
        _ manifest: JSONValue,
        resource: KubernetesResource,
        namespace: String
    ) async throws(KubernetesAPIError) -> CreatedObject
    /// Deletes in the background (what the object owns goes too); with `uid`, only that very object.
    func deleteObject(
        name: String,
        resource: KubernetesResource,
        namespace: String,
        uid: String?
    ) async throws(KubernetesAPIError)
    /// A custom backend's objects with these labels (metadata only).
    func listObjects(
        resource: KubernetesResource,
        namespace: String,
        labelSelector: String
    ) async throws(KubernetesAPIError) -> [ObjectSummary]
    /// Nil when there is no such Lease.
    func lease(name: String, namespace: String) async throws(KubernetesAPIError) -> Lease?
    func createLease(_ lease: Lease, namespace: String) async throws(KubernetesAPIError) -> Lease
    /// Replaces the Lease; `Conflict` when someone else changed it since `lease.resourceVersion`.
    func updateLease(_ lease: Lease, namespace: String) async throws(KubernetesAPIError) -> Lease
    /// Nil when there is no such ConfigMap.
    func configMap(name: String, namespace: String) async throws(KubernetesAPIError) -> ConfigMapData?
    /// Creates (no `resourceVersion`) or replaces (with it; `Conflict` if stale) a ConfigMap.
    func saveConfigMap(name: String, namespace: String, _ configMap: ConfigMapData) async throws(KubernetesAPIError)
}

extension KubernetesAPI {
    /// Deletes the Job of that name, whichever it is (cleaning up what this very request created).
    package func deleteJob(name: String, namespace: String) async throws(KubernetesAPIError) {
        try await deleteJob(name: name, namespace: namespace, uid: nil)
    }
}
