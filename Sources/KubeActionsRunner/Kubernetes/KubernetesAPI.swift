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

    public init(name: String, labels: [String: String], isFinished: Bool) {
        self.name = name
        self.labels = labels
        self.isFinished = isFinished
    }
}

/// The Kubernetes calls the service makes, all in one namespace.
public protocol KubernetesAPI: Sendable {
    func createJob(_ manifest: JSONValue, namespace: String) async throws(KubernetesAPIError) -> CreatedObject
    func createSecret(_ manifest: JSONValue, namespace: String) async throws(KubernetesAPIError)
    /// Deletes with `propagationPolicy: Background`, so the pod and the owned Secret go too.
    func deleteJob(name: String, namespace: String) async throws(KubernetesAPIError)
    func listJobs(
        namespace: String,
        labelSelector: String,
        limit: Int?
    ) async throws(KubernetesAPIError) -> [JobSummary]
}
