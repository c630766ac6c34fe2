import Synchronization

@testable import KubeActionsRunner

/// GitHub's runner registrations and job states, in memory; faults are queued per call.
final class FakeGitHubAPI: GitHubAPI {
    struct State {
        var jobs: [Int64: GitHubJob] = [:]
        var runners: [Int64: String] = [:]  // id -> name
        var runnerLabels: [Int64: [String]] = [:]
        var busy: Set<Int64> = []
        var nextRunnerID: Int64 = 100
        var calls: [String] = []
        var jobFaults: [GitHubAPIError] = []
        var jitFaults: [GitHubAPIError] = []
        var deleteFaults: [GitHubAPIError] = []
    }

    let state = Mutex(State())

    func queue(
        job id: Int64,
        status: String = "queued",
        run: Int64 = 1,
        labels: [String] = ["self-hosted"],
        age: Double = 3600
    ) {
        let created = Timestamps.microTime(Timestamps.now() - age)
        state.withLock {
            $0.jobs[id] = GitHubJob(
                id: id,
                status: status,
                labels: labels,
                runID: run,
                name: "job \(id)",
                createdAt: created
            )
        }
    }

    var runners: [Int64: String] { state.withLock { $0.runners } }
    var calls: [String] { state.withLock { $0.calls } }

    static func error(_ kind: GitHubAPIError.Kind, status: Int?, endpoint: String = "POST x") -> GitHubAPIError {
        GitHubAPIError(
            endpoint: endpoint,
            kind: kind,
            status: status,
            requestID: nil,
            message: "injected",
            retryAt: nil,
            acceptedPermissions: nil
        )
    }

    func job(owner: String, repo: String, id: Int64) async throws(GitHubAPIError) -> GitHubJob {
        let result = state.withLock { state -> Result<GitHubJob, GitHubAPIError> in
            state.calls.append("job \(id)")
            if !state.jobFaults.isEmpty { return .failure(state.jobFaults.removeFirst()) }
            guard let job = state.jobs[id] else { return .failure(Self.error(.notFound, status: 404)) }
            return .success(job)
        }
        return try result.get()
    }

    func generateJITConfig(
        owner: String,
        repo: String,
        _ request: JITConfigRequest
    ) async throws(GitHubAPIError) -> JITConfig {
        let result = state.withLock { state -> Result<JITConfig, GitHubAPIError> in
            state.calls.append("jit \(request.name)")
            if !state.jitFaults.isEmpty { return .failure(state.jitFaults.removeFirst()) }
            if state.runners.values.contains(request.name) { return .failure(Self.error(.conflict, status: 409)) }
            let id = state.nextRunnerID
            state.nextRunnerID += 1
            state.runners[id] = request.name
            state.runnerLabels[id] = request.labels
            return .success(JITConfig(runnerID: id, runnerName: request.name, encodedConfig: Secret("jit-\(id)")))
        }
        return try result.get()
    }

    func runs(owner: String, repo: String, status: String) async throws(GitHubAPIError) -> [WorkflowRun] {
        state.withLock { state in
            state.calls.append("runs \(status)")
            // A run is in progress once any of its jobs started; queued while all of them wait.
            var runs: [Int64: String] = [:]
            for job in state.jobs.values {
                guard let run = job.runID else { continue }
                if job.status == "in_progress" || job.status == "completed" {
                    runs[run] = "in_progress"
                } else if runs[run] == nil {
                    runs[run] = "queued"
                }
            }
            let runIDs = runs.filter { $0.value == status }.map(\.key)
            return runIDs.sorted().map { WorkflowRun(id: $0, status: status) }
        }
    }

    func jobs(owner: String, repo: String, runID: Int64) async throws(GitHubAPIError) -> [GitHubJob] {
        state.withLock { state in
            state.calls.append("jobs \(runID)")
            return state.jobs.values.filter { $0.runID == runID }.sorted { $0.id < $1.id }
        }
    }

    func runners(owner: String, repo: String) async throws(GitHubAPIError) -> [RegisteredRunner] {
        state.withLock { state in
            state.calls.append("runners")
            return state.runners.sorted { $0.key < $1.key }.map {
                RegisteredRunner(
                    id: $0.key,
                    name: $0.value,
                    status: "online",
                    busy: state.busy.contains($0.key),
                    labels: state.runnerLabels[$0.key] ?? []
                )
            }
        }
    }

    func deleteRunner(owner: String, repo: String, runnerID: Int64) async throws(GitHubAPIError) {
        let result = state.withLock { state -> Result<Void, GitHubAPIError> in
            state.calls.append("delete runner \(runnerID)")
            if !state.deleteFaults.isEmpty { return .failure(state.deleteFaults.removeFirst()) }
            if state.busy.contains(runnerID) { return .failure(Self.error(.validation, status: 422)) }
            guard state.runners.removeValue(forKey: runnerID) != nil else {
                return .failure(Self.error(.notFound, status: 404))
            }
            return .success(())
        }
        try result.get()
    }
}

/// Jobs and Secrets in memory, with AlreadyExists and owner-reference deletion; faults queued per verb.
final class FakeKubernetesAPI: KubernetesAPI {
    struct State {
        var jobs: [String: (uid: String, manifest: JSONValue)] = [:]
        var jobCreated: [String: Double] = [:]
        var pods: [PodSummary] = []
        var events: [JobEvent] = []
        var secrets: [String: JSONValue] = [:]
        var calls: [String] = []
        var createJobFaults: [KubernetesAPIError] = []
        var createSecretFaults: [KubernetesAPIError] = []
        /// Delays createJob, to let concurrent callers race.
        var createJobDelay: Duration = .zero
    }

    let state = Mutex(State())
    let objects = InMemoryObjects()
    /// When set, every call fails as if the API server were unreachable.
    let down = Mutex(false)

    var jobNames: Set<String> { state.withLock { Set($0.jobs.keys) } }
    var secretNames: Set<String> { state.withLock { Set($0.secrets.keys) } }
    var calls: [String] { state.withLock { $0.calls } }

    static func error(
        _ kind: KubernetesAPIError.Kind,
        status: Int?,
        verb: String = "create",
        resource: String = "jobs.batch"
    )
        -> KubernetesAPIError
    {
        KubernetesAPIError(
            kind: kind,
            verb: verb,
            resource: resource,
            namespace: "ns",
            status: status,
            message: "injected"
        )
    }

    func createJob(_ manifest: JSONValue, namespace: String) async throws(KubernetesAPIError) -> CreatedObject {
        let delay = state.withLock { $0.createJobDelay }
        if delay > .zero { try? await Task.sleep(for: delay) }
        guard case .string(let name)? = manifest["metadata"]?["name"] else {
            throw Self.error(.invalid, status: 422)
        }
        let result = state.withLock { state -> Result<CreatedObject, KubernetesAPIError> in
            state.calls.append("create job \(name)")
            if !state.createJobFaults.isEmpty { return .failure(state.createJobFaults.removeFirst()) }
            if state.jobs[name] != nil { return .failure(Self.error(.alreadyExists, status: 409)) }
            let uid = "uid-\(name)"
            state.jobs[name] = (uid, manifest)
            state.jobCreated[name] = Timestamps.now()
            return .success(CreatedObject(name: name, uid: uid))
        }
        return try result.get()
    }

    func createSecret(_ manifest: JSONValue, namespace: String) async throws(KubernetesAPIError) {
        guard case .string(let name)? = manifest["metadata"]?["name"] else { throw Self.error(.invalid, status: 422) }
        let result = state.withLock { state -> Result<Void, KubernetesAPIError> in
            state.calls.append("create secret \(name)")
            if !state.createSecretFaults.isEmpty { return .failure(state.createSecretFaults.removeFirst()) }
            state.secrets[name] = manifest
            return .success(())
        }
        try result.get()
    }

    func deleteJob(name: String, namespace: String) async throws(KubernetesAPIError) {
        let result = state.withLock { state -> Result<Void, KubernetesAPIError> in
            state.calls.append("delete job \(name)")
            guard let job = state.jobs.removeValue(forKey: name) else {
                return .failure(Self.error(.notFound, status: 404, verb: "delete"))
            }
            // The garbage collector: Secrets owned by the Job go with it.
            state.secrets = state.secrets.filter { _, secret in
                guard case .array(let owners)? = secret["metadata"]?["ownerReferences"] else { return true }
                return !owners.contains { $0["uid"] == .string(job.uid) }
            }
            return .success(())
        }
        try result.get()
    }

    func listJobs(
        namespace: String,
        labelSelector: String,
        limit: Int?
    ) async throws(KubernetesAPIError) -> [JobSummary] {
        state.withLock { state in
            state.calls.append("list jobs")
            return state.jobs.keys.sorted().map { name in
                JobSummary(name: name, labels: [:], isFinished: false, createdAt: state.jobCreated[name])
            }
        }
    }

    func listPods(namespace: String, labelSelector: String) async throws(KubernetesAPIError) -> [PodSummary] {
        state.withLock { $0.pods }
    }

    func listFailedCreateEvents(namespace: String) async throws(KubernetesAPIError) -> [JobEvent] {
        state.withLock { $0.events }
    }

    func listSecretNames(namespace: String, labelSelector: String) async throws(KubernetesAPIError) -> [String] {
        state.withLock { Array($0.secrets.keys).sorted() }
    }

    func lease(name: String, namespace: String) async throws(KubernetesAPIError) -> Lease? {
        if down.withLock({ $0 }) { throw Self.error(.transport, status: nil, verb: "get", resource: "leases") }
        return objects.lease(name: name)
    }

    func createLease(_ lease: Lease, namespace: String) async throws(KubernetesAPIError) -> Lease {
        if down.withLock({ $0 }) { throw Self.error(.transport, status: nil, resource: "leases") }
        return try objects.createLease(lease, namespace: namespace)
    }

    func updateLease(_ lease: Lease, namespace: String) async throws(KubernetesAPIError) -> Lease {
        if down.withLock({ $0 }) { throw Self.error(.transport, status: nil, verb: "update", resource: "leases") }
        return try objects.updateLease(lease, namespace: namespace)
    }

    func configMap(name: String, namespace: String) async throws(KubernetesAPIError) -> ConfigMapData? {
        objects.configMap(name: name)
    }

    func saveConfigMap(name: String, namespace: String, _ configMap: ConfigMapData) async throws(KubernetesAPIError) {
        try objects.saveConfigMap(name: name, namespace: namespace, configMap)
    }
}

extension JITRunnerProvisioner {
    /// A provisioner in mode `standard` over the given fakes.
    static func make(
        github: FakeGitHubAPI,
        kubernetes: FakeKubernetesAPI,
        metrics: Metrics,
        logs: LogCapture,
        namespace: String = "ns"
    ) -> JITRunnerProvisioner {
        JITRunnerProvisioner(
            github: github,
            kubernetes: kubernetes,
            settings: RunnerJobTests.settings(.standard),
            runnerGroupID: 1,
            monitor: ClusterMonitor(
                kubernetes: kubernetes,
                namespace: namespace,
                metrics: metrics,
                logger: logs.logger()
            ),
            logger: logs.logger()
        )
    }
}

extension Reconciler {
    /// A leading reconciler over the given fakes, watching octo/repo unless told otherwise.
    static func make(
        github: FakeGitHubAPI,
        kubernetes: FakeKubernetesAPI,
        metrics: Metrics,
        logs: LogCapture,
        configuration: Reconciler.Configuration = .init(),
        repositories: [RepositoryRegistry.Repository] = [.init(owner: "octo", name: "repo")],
        matcher: LabelMatcher = .selfHosted,
        rateLimitRemaining: @escaping @Sendable () -> Int64? = { 5000 }
    ) -> Reconciler {
        Reconciler(
            configuration: configuration,
            github: github,
            rateLimitRemaining: rateLimitRemaining,
            kubernetes: kubernetes,
            namespace: "ns",
            provisioner: JITRunnerProvisioner.make(
                github: github,
                kubernetes: kubernetes,
                metrics: metrics,
                logs: logs
            ),
            matcher: matcher,
            repositories: RepositoryRegistry(
                kubernetes: kubernetes,
                namespace: "ns",
                configured: repositories,
                logger: logs.logger()
            ),
            isLeader: { true },
            metrics: metrics,
            logger: logs.logger()
        )
    }
}
