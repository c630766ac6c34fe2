/// The identity the API server gave a created object.
public struct CreatedObject: Sendable, Equatable {
    public var name: String
    public var uid: String

    public init(name: String, uid: String) {
        self.name = name
        self.uid = uid
    }
}

/// What the service needs to know of a runner Job it listed.
public struct JobSummary: Sendable, Equatable {
    public var name: String
    public var labels: [String: String]
    /// A `Complete` or `Failed` condition is true.
    public var isFinished: Bool
    /// `metadata.creationTimestamp`, seconds since the epoch (the API server's clock: compare it only with other
    /// API server times, never with the local clock).
    public var createdAt: Double?
    /// `metadata.uid`: which object exactly (a Job deleted and created again under its name has another).
    public var uid: String?

    public init(
        name: String,
        labels: [String: String],
        isFinished: Bool,
        createdAt: Double? = nil,
        uid: String? = nil
    ) {
        self.name = name
        self.labels = labels
        self.isFinished = isFinished
        self.createdAt = createdAt
        self.uid = uid
    }
}

/// What the reapers need to know of a runner Secret: the registration its Job was made for, in its labels.
public struct SecretSummary: Sendable, Equatable {
    public var name: String
    public var labels: [String: String]
    /// The owning Job's uid (`ownerReferences`), when it has one.
    public var ownerUID: String?

    public init(name: String, labels: [String: String], ownerUID: String? = nil) {
        self.name = name
        self.labels = labels
        self.ownerUID = ownerUID
    }
}

/// The state of one container of a runner pod.
public struct ContainerSummary: Sendable, Equatable {
    public var name: String
    /// An init container (the dind native sidecar is one).
    public var isInit: Bool
    /// `state.waiting.reason`.
    public var waitingReason: String?
    public var isRunning: Bool
    public var isTerminated: Bool
    /// `ready` (for a sidecar with a startup probe: the probe passed).
    public var isReady: Bool

    public init(
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
public struct PodSummary: Sendable, Equatable {
    public var name: String
    /// The Job that owns it (label `batch.kubernetes.io/job-name`).
    public var jobName: String?
    public var createdAt: Double?
    /// `state.waiting.reason` of each container that is waiting (init containers included).
    public var waitingReasons: [String]
    /// `PodScheduled` is `False` with reason `Unschedulable`; the condition's message.
    public var unschedulable: String?
    public var uid: String?
    /// Every container's state (init containers included).
    public var containers: [ContainerSummary]

    public init(
        name: String,
        jobName: String?,
        createdAt: Double?,
        waitingReasons: [String],
        unschedulable: String?,
        uid: String? = nil,
        containers: [ContainerSummary] = []
    ) {
        self.name = name
        self.jobName = jobName
        self.createdAt = createdAt
        self.waitingReasons = waitingReasons
        self.unschedulable = unschedulable
        self.uid = uid
        self.containers = containers
    }
}

/// A `FailedCreate` event of a Job: the Job controller could not create its pod (Pod Security, quota, …).
public struct JobEvent: Sendable, Equatable {
    public var jobName: String
    public var reason: String
    public var message: String
    /// `involvedObject.uid`: the Job exactly (a name outlives the Job it once named).
    public var jobUID: String?
    /// When it last happened (`lastTimestamp`, else `eventTime`, else `firstTimestamp`), seconds since the epoch by
    /// the cluster's clock: compared with the Job's pods' creation times only.
    public var lastSeen: Double?

    public init(jobName: String, reason: String, message: String, jobUID: String? = nil, lastSeen: Double? = nil) {
        self.jobName = jobName
        self.reason = reason
        self.message = message
        self.jobUID = jobUID
        self.lastSeen = lastSeen
    }
}

/// A `coordination.k8s.io/v1` Lease, as leader election reads and writes it.
public struct Lease: Sendable, Equatable {
    public var name: String
    /// Set by the API server; an update must carry the one it read (optimistic concurrency).
    public var resourceVersion: String?
    public var holderIdentity: String?
    public var leaseDurationSeconds: Int?
    /// RFC 3339 with microseconds (`MicroTime`).
    public var acquireTime: String?
    public var renewTime: String?
    public var leaseTransitions: Int?

    public init(
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
public struct ConfigMapData: Sendable, Equatable {
    public var resourceVersion: String?
    public var data: [String: String]

    public init(resourceVersion: String?, data: [String: String]) {
        self.resourceVersion = resourceVersion
        self.data = data
    }
}

/// The Kubernetes calls the service makes, all in one namespace.
public protocol KubernetesAPI: Sendable {
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
    func listPods(namespace: String, labelSelector: String) async throws(KubernetesAPIError) -> [PodSummary]
    /// `FailedCreate` events of Jobs.
    func listFailedCreateEvents(namespace: String) async throws(KubernetesAPIError) -> [JobEvent]
    /// The Secrets with these labels (names, labels and owner; never their data).
    func listSecrets(namespace: String, labelSelector: String) async throws(KubernetesAPIError) -> [SecretSummary]
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
    public func deleteJob(name: String, namespace: String) async throws(KubernetesAPIError) {
        try await deleteJob(name: name, namespace: namespace, uid: nil)
    }
}
