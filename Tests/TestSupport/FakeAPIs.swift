import App
import GitHub
import Kubernetes
import Observability
import Runners
import Support
import Synchronization

/// GitHub's runner registrations and job states, in memory; faults are queued per call.
package final class FakeGitHubAPI: GitHubAPI {
    package struct State {
        package var jobs: [Int64: GitHubJob] = [:]
        package var runners: [Int64: String] = [:]  // id -> name
        package var runnerLabels: [Int64: [String]] = [:]
        package var busy: Set<Int64> = []
        /// Registrations whose runner connected (GitHub's `status: online`).
        package var online: Set<Int64> = []
        package var nextRunnerID: Int64 = 100
        package var calls: [String] = [] {
            didSet { if calls.count > oldValue.count { callTimes.append(clock?.elapsed ?? .zero) } }
        }
        /// When each call came, on `clock` (zero without one).
        package var callTimes: [Duration] = []
        /// Times the calls (`callTimes`), for the points a minute they spend.
        package var clock: ManualClock?
        /// Jobs of one repository only ("owner/repo"): listed and found there alone, as on GitHub; the others are
        /// listed for any repository.
        package var jobRepository: [Int64: String] = [:]
        /// The repositories whose queued runs were listed, in order.
        package var listedRepositories: [String] = []
        package var jobFaults: [GitHubAPIError] = []
        package var jitFaults: [GitHubAPIError] = []
        /// Failed-but-effective JIT calls: the runner is registered, then the answer is this failure.
        package var jitEffectiveFaults: [GitHubAPIError] = []
        package var deleteFaults: [GitHubAPIError] = []
        /// Registrations of one repository only ("owner/repo"), listed and found there alone, as on GitHub; the
        /// others are listed for any repository.
        package var runnerRepository: [Int64: String] = [:]
        /// Organization registrations (id -> organization): listed, found and deleted with the organization scope
        /// only, as on GitHub.
        package var runnerOrganization: [Int64: String] = [:]
        /// Runner groups by organization.
        package var runnerGroups: [String: [RunnerGroup]] = [:]
        /// The runner group of each registration made here.
        package var runnerGroupOf: [Int64: Int] = [:]
        /// Each hook's deliveries, oldest first (listed newest first, as GitHub lists them).
        package var hookDeliveries: [WebhookHook: [HookDelivery]] = [:]
        /// A hook whose deliveries the credential may not read (GitHub's 403 or 404) answers this to every call.
        package var hookFaults: [WebhookHook: GitHubAPIError] = [:]
        /// A hook whose deliveries the credential may list but not redeliver answers this to each redelivery.
        package var redeliveryFaults: [WebhookHook: GitHubAPIError] = [:]
        package var nextDeliveryID: Int64 = 1_000
        /// Epoch seconds when `clock` reads zero: a redelivery is delivered at this plus its elapsed time.
        package var epochAtStart: Double = 1_700_000_000
    }

    package let state = Mutex(State())

    package func queue(
        job id: Int64,
        status: String = "queued",
        run: Int64 = 1,
        labels: [String] = ["self-hosted"],
        age: Double = 3600,
        repository: String? = nil
    ) {
        let created = Timestamps.microTime(Timestamps.now() - age)
        state.withLock {
            if let repository { $0.jobRepository[id] = repository }
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

    package var runners: [Int64: String] { state.withLock { $0.runners } }

    /// A registration made by someone else, or by hand (`labels` decide whose it is).
    @discardableResult
    package func register(
        _ name: String,
        labels: [String],
        busy: Bool = false,
        id: Int64? = nil,
        repository: String? = nil
    ) -> Int64 {
        state.withLock { state in
            let id = id ?? state.nextRunnerID
            state.nextRunnerID = max(state.nextRunnerID, id + 1)
            state.runners[id] = name
            state.runnerLabels[id] = labels
            if busy { state.busy.insert(id) }
            if let repository { state.runnerRepository[id] = repository }
            return id
        }
    }

    /// A registration's runner starts `job` (GitHub marks it busy and the job in progress on it).
    package func start(runner id: Int64, on job: Int64) {
        state.withLock { state in
            state.busy.insert(id)
            state.online.insert(id)
            state.jobs[job]?.status = "in_progress"
            state.jobs[job]?.runnerName = state.runners[id]
        }
    }

    /// An ephemeral runner finishes `job`: the job is completed and GitHub removes the runner's registration.
    package func complete(job: Int64, runner id: Int64) {
        state.withLock { state in
            state.jobs[job]?.status = "completed"
            state.runners[id] = nil
            state.runnerLabels[id] = nil
            state.busy.remove(id)
            state.online.remove(id)
        }
    }

    package var calls: [String] { state.withLock { $0.calls } }

    /// While closed, every call waits at its start until it is opened again, or until its task is cancelled (then
    /// it fails as a transfer the real client abandons does).
    package let gate = CallGate()

    /// The most points (a GET 1, a POST or DELETE 5, as GitHub counts them) spent in any minute, by `clock`.
    package var mostPointsInAMinute: Int {
        state.withLock { state in
            let spent = zip(state.callTimes, state.calls).map { time, call in
                (time, call.hasPrefix("jit") || call.hasPrefix("delete") ? 5 : 1)
            }
            var most = 0
            for (start, _) in spent {
                let inMinute = spent.filter { $0.0 >= start && $0.0 < start + .seconds(60) }
                most = max(most, inMinute.reduce(0) { $0 + $1.1 })
            }
            return most
        }
    }

    private func pass() async throws(GitHubAPIError) {
        guard await gate.pass() else {
            throw GitHubAPIError(
                endpoint: "GET x",
                kind: .transport,
                status: nil,
                requestID: nil,
                message: "cancelled",
                retryAt: nil,
                acceptedPermissions: nil
            )
        }
    }

    /// Whether job `id` is seen in `owner/repo`.
    static func isListed(job id: Int64, owner: String, repo: String, in state: State) -> Bool {
        state.jobRepository[id].map { $0 == "\(owner)/\(repo)" } ?? true
    }

    package static func error(_ kind: GitHubAPIError.Kind, status: Int?, endpoint: String = "POST x") -> GitHubAPIError
    {
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

    package func job(owner: String, repo: String, id: Int64) async throws(GitHubAPIError) -> GitHubJob {
        try await pass()
        let result = state.withLock { state -> Result<GitHubJob, GitHubAPIError> in
            state.calls.append("job \(id)")
            if !state.jobFaults.isEmpty { return .failure(state.jobFaults.removeFirst()) }
            guard let job = state.jobs[id], Self.isListed(job: id, owner: owner, repo: repo, in: state) else {
                return .failure(Self.error(.notFound, status: 404))
            }
            return .success(job)
        }
        return try result.get()
    }

    package func generateJITConfig(
        owner: String,
        repo: String,
        scope: RunnerScope,
        _ request: JITConfigRequest
    ) async throws(GitHubAPIError) -> JITConfig {
        try await pass()
        let result = state.withLock { state -> Result<JITConfig, GitHubAPIError> in
            state.calls.append(scope == .organization ? "jit org \(owner) \(request.name)" : "jit \(request.name)")
            if !state.jitFaults.isEmpty { return .failure(state.jitFaults.removeFirst()) }
            if state.runners.values.contains(request.name) { return .failure(Self.error(.conflict, status: 409)) }
            let id = state.nextRunnerID
            state.nextRunnerID += 1
            state.runners[id] = request.name
            state.runnerLabels[id] = request.labels
            state.runnerGroupOf[id] = request.runnerGroupID
            switch scope {
            case .organization: state.runnerOrganization[id] = owner
            case .repository: state.runnerRepository[id] = "\(owner)/\(repo)"
            }
            if !state.jitEffectiveFaults.isEmpty { return .failure(state.jitEffectiveFaults.removeFirst()) }
            return .success(JITConfig(runnerID: id, runnerName: request.name, encodedConfig: Secret("jit-\(id)")))
        }
        return try result.get()
    }

    package func runs(owner: String, repo: String, status: String) async throws(GitHubAPIError) -> [WorkflowRun] {
        try await pass()
        return state.withLock { state in
            state.calls.append("runs \(status)")
            if status == "queued" { state.listedRepositories.append("\(owner)/\(repo)") }
            // A run is in progress once any of its jobs started; queued while all of them wait.
            var runs: [Int64: String] = [:]
            for job in state.jobs.values where Self.isListed(job: job.id, owner: owner, repo: repo, in: state) {
                guard let run = job.runID else { continue }
                if job.status == "in_progress" || job.status == "completed" {
                    runs[run] = "in_progress"
                } else if runs[run] == nil {
                    runs[run] = "queued"
                }
            }
            let runIDs = runs.filter { $0.value == status }.map(\.key)
            return runIDs.sorted().prefix(GitHubListing.limit).map { WorkflowRun(id: $0, status: status) }
        }
    }

    package func jobs(owner: String, repo: String, runID: Int64) async throws(GitHubAPIError) -> [GitHubJob] {
        try await pass()
        return state.withLock { state in
            state.calls.append("jobs \(runID)")
            return state.jobs.values.filter {
                $0.runID == runID && Self.isListed(job: $0.id, owner: owner, repo: repo, in: state)
            }.sorted { $0.id < $1.id }
        }
    }

    package func runners(
        owner: String,
        repo: String,
        scope: RunnerScope
    ) async throws(GitHubAPIError) -> [RegisteredRunner] {
        try await pass()
        return state.withLock { state in
            state.calls.append(scope == .organization ? "runners org \(owner)" : "runners")
            // As the client reads it: every page, up to the list limit.
            let here = state.runners.filter { Self.isListed($0.key, owner: owner, repo: repo, scope: scope, in: state) }
            return here.sorted { $0.key < $1.key }.prefix(GitHubListing.limit).map {
                RegisteredRunner(
                    id: $0.key,
                    name: $0.value,
                    status: state.online.contains($0.key) ? "online" : "offline",
                    busy: state.busy.contains($0.key),
                    labels: state.runnerLabels[$0.key] ?? []
                )
            }
        }
    }

    package func runner(
        owner: String,
        repo: String,
        scope: RunnerScope,
        id: Int64
    ) async throws(GitHubAPIError) -> RegisteredRunner? {
        try await pass()
        return state.withLock { state in
            state.calls.append("runner \(id)")
            guard let name = state.runners[id], Self.isListed(id, owner: owner, repo: repo, scope: scope, in: state)
            else { return nil }
            return RegisteredRunner(
                id: id,
                name: name,
                status: state.online.contains(id) ? "online" : "offline",
                busy: state.busy.contains(id),
                labels: state.runnerLabels[id] ?? []
            )
        }
    }

    package func deleteRunner(
        owner: String,
        repo: String,
        scope: RunnerScope,
        runnerID: Int64
    ) async throws(GitHubAPIError) {
        try await pass()
        let result = state.withLock { state -> Result<Void, GitHubAPIError> in
            state.calls.append(scope == .organization ? "delete org runner \(runnerID)" : "delete runner \(runnerID)")
            if !state.deleteFaults.isEmpty { return .failure(state.deleteFaults.removeFirst()) }
            if state.runners[runnerID] != nil,
                !Self.isListed(runnerID, owner: owner, repo: repo, scope: scope, in: state)
            {
                return .failure(Self.error(.notFound, status: 404))
            }
            if state.busy.contains(runnerID) { return .failure(Self.error(.validation, status: 422)) }
            guard state.runners.removeValue(forKey: runnerID) != nil else {
                return .failure(Self.error(.notFound, status: 404))
            }
            return .success(())
        }
        try result.get()
    }
}

extension FakeGitHubAPI {
    package func runnerGroups(organization: String) async throws(GitHubAPIError) -> [RunnerGroup] {
        state.withLock { state in
            state.calls.append("runner groups \(organization)")
            return state.runnerGroups[organization] ?? [RunnerGroup(id: 1, name: "Default", isDefault: true)]
        }
    }

    /// Whether registration `id` is seen at `scope`: an organization's runners at its organization only; a
    /// repository's at that repository only; the others (registered by hand) at any repository.
    static func isListed(_ id: Int64, owner: String, repo: String, scope: RunnerScope, in state: State) -> Bool {
        switch scope {
        case .organization:
            return state.runnerOrganization[id] == owner
        case .repository:
            guard state.runnerOrganization[id] == nil else { return false }
            return state.runnerRepository[id].map { $0 == "\(owner)/\(repo)" } ?? true
        }
    }
}

/// A gate test doubles' calls wait at while it is closed: a test holds a call in flight, looks, and lets it go.
package final class CallGate: Sendable {
    private struct State {
        var closed = false
        var waiting: [Int: CheckedContinuation<Bool, Never>] = [:]
        var nextID = 0
    }

    private let state = Mutex(State())

    package init() {}

    /// How many calls wait at the gate.
    package var waiting: Int { state.withLock { $0.waiting.count } }

    package func close() { state.withLock { $0.closed = true } }

    /// Opens the gate and lets every waiting call go.
    package func open() {
        let waiting = state.withLock { state in
            state.closed = false
            defer { state.waiting.removeAll() }
            return Array(state.waiting.values)
        }
        for call in waiting { call.resume(returning: true) }
    }

    /// Waits while the gate is closed; false when the task was cancelled.
    func pass() async -> Bool {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let outcome = state.withLock { state -> Bool? in
                    if Task.isCancelled { return false }
                    guard state.closed else { return true }
                    state.waiting[id] = continuation
                    return nil
                }
                if let outcome { continuation.resume(returning: outcome) }
            }
        } onCancel: {
            let call = state.withLock { $0.waiting.removeValue(forKey: id) }
            call?.resume(returning: false)
        }
    }
}

/// Jobs, Secrets, pods and events in memory, as the API server and the Job controller keep them where the service
/// can tell: unique uids, label selectors, AlreadyExists, delete preconditions (409 Conflict), owner-reference
/// deletion, and a Job controller (`runJobController`) that creates each Job's pod, or, under a pod quota, records
/// a `FailedCreate` event on the Job's uid. Faults queued per verb.
package final class FakeKubernetesAPI: KubernetesAPI {
    package struct StoredJob {
        package var uid: String
        package var manifest: JSONValue
        package var labels: [String: String]
        package var finished = false
    }

    package struct StoredPod {
        package var labels: [String: String]
        package var pod: PodSummary
    }

    package struct State {
        package var jobs: [String: StoredJob] = [:]
        package var jobCreated: [String: Double] = [:]
        package var pods: [StoredPod] = []
        package var events: [JobEvent] = []
        package var secrets: [String: JSONValue] = [:]
        /// A custom backend's objects, by resource and name.
        package var objects: [KubernetesResource: [String: StoredJob]] = [:]
        /// Resources the API server does not serve (a CRD not installed, a misspelt plural): every call about them
        /// is answered 404, as the API server answers a path it has no handler for.
        package var unservedResources: Set<KubernetesResource> = []
        package var calls: [String] = []
        package var createJobFaults: [KubernetesAPIError] = []
        /// This many creates make their Job and then fail as a client-side timeout does: the write reached storage
        /// after the client gave up (an API server whose queue held the call for longer than the client's timeout).
        package var createJobAnswersLost = 0
        package var createSecretFaults: [KubernetesAPIError] = []
        package var listPodsFaults: [KubernetesAPIError] = []
        package var listObjectsFaults: [KubernetesAPIError] = []
        /// createJob answers once this many calls have arrived, so concurrent callers race for one name.
        package var createJobCallers = 1
        var createJobWaiting: [CheckedContinuation<Void, Never>] = []
        /// listJobs answers once this many calls have arrived, so concurrent callers all see the same list.
        package var listJobsCallers = 1
        var listJobsWaiting: [CheckedContinuation<Void, Never>] = []
        /// A ResourceQuota on pods: the Job controller creates no pod past this many.
        package var podQuota: Int? = nil
        package var nextUID = 1
        /// The cluster's clock (seconds), for creation and event times.
        package var time = 1_000_000.0
    }

    package let state = Mutex(State())
    package let objects = InMemoryObjects()
    /// When set, every call fails as if the API server were unreachable.
    package let down = Mutex(false)

    package var jobNames: Set<String> { state.withLock { Set($0.jobs.keys) } }
    package var secretNames: Set<String> { state.withLock { Set($0.secrets.keys) } }
    package var calls: [String] { state.withLock { $0.calls } }

    package static func error(
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

    package static func labels(of manifest: JSONValue?) -> [String: String] {
        guard case .object(let fields)? = manifest?["metadata"]?["labels"] else { return [:] }
        var labels: [String: String] = [:]
        for (key, value) in fields {
            if case .string(let text) = value { labels[key] = text }
        }
        return labels
    }

    /// Equality-based label selectors (`a=b,c==d,e!=f`), as the API server reads them.
    package static func matches(_ selector: String, _ labels: [String: String]) -> Bool {
        selector.split(separator: ",").allSatisfy { term in
            if let range = term.range(of: "!=") {
                return labels[String(term[..<range.lowerBound])] != String(term[range.upperBound...])
            }
            let parts = term.replacingOccurrences(of: "==", with: "=").split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { return labels[String(term)] != nil }
            return labels[String(parts[0])] == String(parts[1])
        }
    }

    /// A Job of this service as the API server would hold it (for tests that set up state directly).
    @discardableResult
    package func addJob(_ name: String, labels: [String: String], finished: Bool = false) -> String {
        state.withLock { state in
            let uid = "uid-\(state.nextUID)"
            state.nextUID += 1
            state.jobs[name] = StoredJob(uid: uid, manifest: .object([]), labels: labels, finished: finished)
            state.jobCreated[name] = state.time
            return uid
        }
    }

    package func uid(of job: String) -> String? { state.withLock { $0.jobs[job]?.uid } }

    package func finish(_ job: String) { state.withLock { $0.jobs[job]?.finished = true } }

    /// The Job controller's pass: each live Job without a pod gets one (labels from its template, plus
    /// `batch.kubernetes.io/job-name`), unless the pod quota is used up: then a `FailedCreate` event on the Job's uid.
    package func runJobController(advance seconds: Double = 1) {
        state.withLock { state in
            state.time += seconds
            for (name, job) in state.jobs.sorted(by: { $0.key < $1.key }) where !job.finished {
                guard !state.pods.contains(where: { $0.pod.jobName == name }) else { continue }
                let podName = "\(name)-\(String(state.nextUID, radix: 36))"
                if let quota = state.podQuota, state.pods.count >= quota {
                    let message =
                        #"pods "\#(podName)" is forbidden: exceeded quota: runner-quota, requested: pods=1, used: pods=\#(state.pods.count), limited: pods=\#(quota)"#
                    state.events.removeAll { $0.jobUID == job.uid && $0.message.contains("exceeded quota") }
                    state.events.append(
                        JobEvent(
                            jobName: name,
                            reason: "FailedCreate",
                            message: message,
                            jobUID: job.uid,
                            lastSeen: state.time
                        )
                    )
                    continue
                }
                let uid = "uid-\(state.nextUID)"
                state.nextUID += 1
                var labels = job.labels
                labels["batch.kubernetes.io/job-name"] = name
                state.pods.append(
                    StoredPod(
                        labels: labels,
                        pod: PodSummary(
                            name: podName,
                            jobName: name,
                            createdAt: state.time,
                            waitingReasons: [],
                            unschedulable: nil,
                            uid: uid,
                            containers: [ContainerSummary(name: "runner", isRunning: true, isReady: true)],
                            labels: labels
                        )
                    )
                )
            }
        }
    }

    /// Changes the pod of `job` (its containers' states, say).
    package func updatePod(of job: String, _ change: (inout PodSummary) -> Void) {
        state.withLock { state in
            for index in state.pods.indices where state.pods[index].pod.jobName == job {
                change(&state.pods[index].pod)
            }
        }
    }

    package func createJob(_ manifest: JSONValue, namespace: String) async throws(KubernetesAPIError) -> CreatedObject {
        if state.withLock({ $0.createJobCallers > 1 }) {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let arrived = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                    state.createJobWaiting.append(continuation)
                    guard state.createJobWaiting.count >= state.createJobCallers else { return [] }
                    defer { state.createJobWaiting = [] }
                    return state.createJobWaiting
                }
                for caller in arrived { caller.resume() }
            }
        }
        guard case .string(let name)? = manifest["metadata"]?["name"] else {
            throw Self.error(.invalid, status: 422)
        }
        let result = state.withLock { state -> Result<CreatedObject, KubernetesAPIError> in
            state.calls.append("create job \(name)")
            if !state.createJobFaults.isEmpty { return .failure(state.createJobFaults.removeFirst()) }
            if state.jobs[name] != nil { return .failure(Self.error(.alreadyExists, status: 409)) }
            let uid = "uid-\(state.nextUID)"
            state.nextUID += 1
            state.jobs[name] = StoredJob(uid: uid, manifest: manifest, labels: Self.labels(of: manifest))
            state.jobCreated[name] = state.time
            if state.createJobAnswersLost > 0 {
                state.createJobAnswersLost -= 1
                return .failure(Self.error(.transport, status: nil))
            }
            return .success(CreatedObject(name: name, uid: uid))
        }
        return try result.get()
    }

    package func createObject(
        _ manifest: JSONValue,
        resource: KubernetesResource,
        namespace: String
    ) async throws(KubernetesAPIError) -> CreatedObject {
        guard case .string(let name)? = manifest["metadata"]?["name"],
            manifest["apiVersion"] == .string(resource.apiVersion), manifest["kind"] == .string(resource.kind)
        else {
            throw Self.error(.invalid, status: 422, resource: resource.resourceName)
        }
        let result = state.withLock { state -> Result<CreatedObject, KubernetesAPIError> in
            state.calls.append("create \(resource.plural) \(name)")
            if state.unservedResources.contains(resource) {
                return .failure(Self.error(.notFound, status: 404, resource: resource.resourceName))
            }
            if !state.createJobFaults.isEmpty { return .failure(state.createJobFaults.removeFirst()) }
            if state.objects[resource]?[name] != nil {
                return .failure(Self.error(.alreadyExists, status: 409, resource: resource.resourceName))
            }
            let uid = "uid-\(state.nextUID)"
            state.nextUID += 1
            state.objects[resource, default: [:]][name] = StoredJob(
                uid: uid,
                manifest: manifest,
                labels: Self.labels(of: manifest)
            )
            state.jobCreated[name] = state.time
            return .success(CreatedObject(name: name, uid: uid))
        }
        return try result.get()
    }

    package func deleteObject(
        name: String,
        resource: KubernetesResource,
        namespace: String,
        uid: String?
    ) async throws(KubernetesAPIError) {
        let result = state.withLock { state -> Result<Void, KubernetesAPIError> in
            state.calls.append("delete \(resource.plural) \(name)")
            if state.unservedResources.contains(resource) {
                return .failure(Self.error(.notFound, status: 404, verb: "delete", resource: resource.resourceName))
            }
            guard let object = state.objects[resource]?[name] else {
                return .failure(Self.error(.notFound, status: 404, verb: "delete", resource: resource.resourceName))
            }
            if let uid, uid != object.uid {
                return .failure(Self.error(.conflict, status: 409, verb: "delete", resource: resource.resourceName))
            }
            state.objects[resource]?[name] = nil
            // The garbage collector: the Secrets the object owns go with it.
            state.secrets = state.secrets.filter { _, secret in
                guard case .array(let owners)? = secret["metadata"]?["ownerReferences"] else { return true }
                return !owners.contains { $0["uid"] == .string(object.uid) }
            }
            return .success(())
        }
        try result.get()
    }

    package func listObjects(
        resource: KubernetesResource,
        namespace: String,
        labelSelector: String
    ) async throws(KubernetesAPIError) -> [ObjectSummary] {
        if down.withLock({ $0 }) { throw Self.error(.transport, status: nil, verb: "list") }
        return try state.withLock { state throws(KubernetesAPIError) in
            state.calls.append("list \(resource.plural)")
            if !state.listObjectsFaults.isEmpty { throw state.listObjectsFaults.removeFirst() }
            if state.unservedResources.contains(resource) {
                throw Self.error(.notFound, status: 404, verb: "list", resource: resource.resourceName)
            }
            return (state.objects[resource] ?? [:]).sorted { $0.key < $1.key }
                .filter { Self.matches(labelSelector, $0.value.labels) }
                .map {
                    ObjectSummary(
                        name: $0.key,
                        labels: $0.value.labels,
                        createdAt: state.jobCreated[$0.key],
                        uid: $0.value.uid
                    )
                }
        }
    }

    package func createSecret(_ manifest: JSONValue, namespace: String) async throws(KubernetesAPIError) {
        guard case .string(let name)? = manifest["metadata"]?["name"] else { throw Self.error(.invalid, status: 422) }
        let result = state.withLock { state -> Result<Void, KubernetesAPIError> in
            state.calls.append("create secret \(name)")
            if !state.createSecretFaults.isEmpty { return .failure(state.createSecretFaults.removeFirst()) }
            if state.secrets[name] != nil {
                return .failure(Self.error(.alreadyExists, status: 409, resource: "secrets"))
            }
            state.secrets[name] = manifest
            return .success(())
        }
        try result.get()
    }

    package func deleteJob(name: String, namespace: String, uid: String?) async throws(KubernetesAPIError) {
        let result = state.withLock { state -> Result<Void, KubernetesAPIError> in
            state.calls.append("delete job \(name)")
            guard let job = state.jobs[name] else {
                return .failure(Self.error(.notFound, status: 404, verb: "delete"))
            }
            if let uid, uid != job.uid {
                // The API server: 409 Conflict, "Precondition failed: UID in precondition: …, UID in object meta: …".
                return .failure(Self.error(.conflict, status: 409, verb: "delete"))
            }
            state.jobs[name] = nil
            // The garbage collector: the pod and the Secrets owned by the Job go with it.
            state.pods.removeAll { $0.pod.jobName == name }
            state.secrets = state.secrets.filter { _, secret in
                guard case .array(let owners)? = secret["metadata"]?["ownerReferences"] else { return true }
                return !owners.contains { $0["uid"] == .string(job.uid) }
            }
            return .success(())
        }
        try result.get()
    }

    package func listJobs(
        namespace: String,
        labelSelector: String,
        limit: Int?
    ) async throws(KubernetesAPIError) -> [JobSummary] {
        if down.withLock({ $0 }) { throw Self.error(.transport, status: nil, verb: "list") }
        if state.withLock({ $0.listJobsCallers > 1 }) {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let arrived = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                    state.listJobsWaiting.append(continuation)
                    guard state.listJobsWaiting.count >= state.listJobsCallers else { return [] }
                    defer {
                        state.listJobsWaiting = []
                        state.listJobsCallers = 1
                    }
                    return state.listJobsWaiting
                }
                for caller in arrived { caller.resume() }
            }
        }
        return state.withLock { state in
            state.calls.append("list jobs")
            return state.jobs.sorted { $0.key < $1.key }.filter { Self.matches(labelSelector, $0.value.labels) }.map {
                JobSummary(
                    name: $0.key,
                    labels: $0.value.labels,
                    isFinished: $0.value.finished,
                    createdAt: state.jobCreated[$0.key],
                    uid: $0.value.uid
                )
            }
        }
    }

    package func job(named name: String, namespace: String) async throws(KubernetesAPIError) -> JobIdentity? {
        state.withLock { state in
            state.calls.append("read job \(name)")
            guard let job = state.jobs[name] else { return nil }
            var annotations: [String: String] = [:]
            if case .object(let fields)? = job.manifest["metadata"]?["annotations"] {
                for case (let key, .string(let value)) in fields { annotations[key] = value }
            }
            return JobIdentity(uid: job.uid, annotations: annotations)
        }
    }

    package func listPods(namespace: String, labelSelector: String) async throws(KubernetesAPIError) -> [PodSummary] {
        let result = state.withLock { state -> Result<[PodSummary], KubernetesAPIError> in
            if !state.listPodsFaults.isEmpty { return .failure(state.listPodsFaults.removeFirst()) }
            return .success(state.pods.filter { Self.matches(labelSelector, $0.labels) }.map(\.pod))
        }
        return try result.get()
    }

    package func deletePod(name: String, namespace: String, uid: String?) async throws(KubernetesAPIError) {
        let result = state.withLock { state -> Result<Void, KubernetesAPIError> in
            state.calls.append("delete pod \(name)")
            guard let index = state.pods.firstIndex(where: { $0.pod.name == name }) else {
                return .failure(Self.error(.notFound, status: 404, verb: "delete"))
            }
            if let uid, uid != state.pods[index].pod.uid {
                return .failure(Self.error(.conflict, status: 409, verb: "delete"))
            }
            state.pods.remove(at: index)
            return .success(())
        }
        try result.get()
    }

    /// A pod the runner's container hooks created for its job container, as they label it: their own
    /// `runner-pod` label, and the labels of the pod template extension the runner pod writes for them. No Job
    /// owns it, so nothing removes it by itself.
    @discardableResult
    package func addHookPod(runnerPod: String, labels extra: [String: String]) -> PodSummary {
        state.withLock { state in
            let name = "\(runnerPod)-workflow"
            var labels = extra
            labels[RunnerJob.hookRunnerPodLabel] = runnerPod
            let pod = PodSummary(
                name: name,
                jobName: nil,
                createdAt: state.time,
                waitingReasons: [],
                unschedulable: nil,
                uid: "uid-\(state.nextUID)",
                containers: [ContainerSummary(name: "job", isRunning: true, isReady: true)],
                labels: labels
            )
            state.nextUID += 1
            state.pods.append(StoredPod(labels: labels, pod: pod))
            return pod
        }
    }

    package func listFailedCreateEvents(namespace: String) async throws(KubernetesAPIError) -> [JobEvent] {
        state.withLock { $0.events }
    }

    package func listSecrets(
        namespace: String,
        labelSelector: String
    ) async throws(KubernetesAPIError) -> [SecretSummary] {
        state.withLock { state in
            state.secrets.sorted { $0.key < $1.key }.compactMap { name, manifest in
                let labels = Self.labels(of: manifest)
                guard Self.matches(labelSelector, labels) else { return nil }
                var owner: String?
                if case .array(let owners)? = manifest["metadata"]?["ownerReferences"],
                    case .string(let uid)? = owners.first?["uid"]
                {
                    owner = uid
                }
                return SecretSummary(name: name, labels: labels, ownerUID: owner)
            }
        }
    }

    package func lease(name: String, namespace: String) async throws(KubernetesAPIError) -> Lease? {
        if down.withLock({ $0 }) { throw Self.error(.transport, status: nil, verb: "get", resource: "leases") }
        return objects.lease(name: name)
    }

    package func createLease(_ lease: Lease, namespace: String) async throws(KubernetesAPIError) -> Lease {
        if down.withLock({ $0 }) { throw Self.error(.transport, status: nil, resource: "leases") }
        return try objects.createLease(lease, namespace: namespace)
    }

    package func updateLease(_ lease: Lease, namespace: String) async throws(KubernetesAPIError) -> Lease {
        if down.withLock({ $0 }) { throw Self.error(.transport, status: nil, verb: "update", resource: "leases") }
        return try objects.updateLease(lease, namespace: namespace)
    }

    package func configMap(name: String, namespace: String) async throws(KubernetesAPIError) -> ConfigMapData? {
        objects.configMap(name: name)
    }

    package func saveConfigMap(
        name: String,
        namespace: String,
        _ configMap: ConfigMapData
    ) async throws(KubernetesAPIError) {
        try objects.saveConfigMap(name: name, namespace: namespace, configMap)
    }
}

extension JITRunnerProvisioner {
    /// A provisioner in mode `standard` over the given fakes; its retry pauses take no time unless a test passes
    /// another clock.
    package static func make(
        github: FakeGitHubAPI,
        kubernetes: FakeKubernetesAPI,
        metrics: Metrics,
        logs: LogCapture,
        namespace: String = "ns",
        clock: some Clock<Duration> = ImmediateClock(),
        scope: RunnerScope = .repository,
        settings: RunnerJob.Settings = Samples.settings(.standard)
    ) -> JITRunnerProvisioner {
        JITRunnerProvisioner(
            github: github,
            kubernetes: kubernetes,
            settings: settings,
            runnerGroupID: 1,
            monitor: ClusterMonitor(
                kubernetes: kubernetes,
                namespace: namespace,
                metrics: metrics,
                logger: logs.logger()
            ),
            clock: clock,
            logger: logs.logger(),
            scope: scope
        )
    }
}

extension Reconciler {
    /// A leading reconciler over the given fakes, watching octo/repo unless told otherwise; `clock` times its rules
    /// and cycles, while its provisioner's retry pauses take no time.
    package static func make(
        github: FakeGitHubAPI,
        kubernetes: FakeKubernetesAPI,
        metrics: Metrics,
        logs: LogCapture,
        configuration: Reconciler.Configuration = .init(),
        repositories: [RepositoryRegistry.Repository] = [.init(owner: "octo", name: "repo")],
        matcher: LabelMatcher = .selfHosted,
        rateLimitRemaining: @escaping @Sendable () -> Int64? = { 5000 },
        clock: some Clock<Duration> = ContinuousClock(),
        isLeader: @escaping @Sendable () -> Bool = { true },
        scope: RunnerScope = .repository,
        registry: RepositoryRegistry? = nil,
        deliveryRecovery: DeliveryRecovery? = nil,
        provisioner: (any RunnerProvisioner)? = nil,
        contentBudget: ContentBudget? = nil,
        contentKey: @escaping @Sendable (_ owner: String) -> String = { _ in "" },
        profiles: RunnerProfileStore? = nil
    ) -> Reconciler {
        let matcher: any JobMatching = profiles ?? matcher
        return Reconciler(
            configuration: configuration,
            github: github,
            rateLimitRemaining: rateLimitRemaining,
            kubernetes: kubernetes,
            namespace: "ns",
            ownerLabel: Samples.ownerLabel,
            provisioner: provisioner
                ?? JITRunnerProvisioner.make(
                    github: github,
                    kubernetes: kubernetes,
                    metrics: metrics,
                    logs: logs,
                    scope: scope
                ),
            matcher: matcher,
            repositories: registry
                ?? RepositoryRegistry(
                    kubernetes: kubernetes,
                    namespace: "ns",
                    configured: repositories,
                    logger: logs.logger()
                ),
            isLeader: isLeader,
            scope: scope,
            contentBudget: contentBudget,
            contentKey: contentKey,
            deliveryRecovery: deliveryRecovery,
            clock: clock,
            metrics: metrics,
            logger: logs.logger()
        )
    }
}

extension FakeGitHubAPI {
    /// A delivery through `hook` now (on `clock`), `seconds` ago: `statusCode` 2xx is GitHub's `OK`.
    @discardableResult
    package func deliver(
        _ guid: String,
        through hook: WebhookHook,
        statusCode: Int = 200,
        event: String = "workflow_job",
        secondsAgo: Double = 0,
        repositoryID: Int64? = nil
    ) -> HookDelivery {
        state.withLock { state in
            let now = state.epochAtStart + Double((state.clock?.elapsed ?? .zero).components.seconds)
            let redelivery = state.hookDeliveries[hook, default: []].contains { $0.guid == guid }
            let delivery = HookDelivery(
                id: state.nextDeliveryID,
                guid: guid,
                deliveredAt: Timestamps.seconds(Int64(now - secondsAgo)),
                redelivery: redelivery,
                status: (200..<300).contains(statusCode) ? "OK" : "Invalid HTTP Response: \(statusCode)",
                statusCode: statusCode,
                event: event,
                repositoryID: repositoryID
            )
            state.nextDeliveryID += 1
            state.hookDeliveries[hook, default: []].append(delivery)
            return delivery
        }
    }

    /// Pages of `perPage`, newest first; the cursor is the offset of the next page.
    package func hookDeliveries(
        _ hook: WebhookHook,
        perPage: Int,
        cursor: String?
    ) async throws(GitHubAPIError) -> HookDeliveryPage {
        let result = state.withLock { state -> Result<HookDeliveryPage, GitHubAPIError> in
            state.calls.append("deliveries \(hook)" + (cursor.map { " from \($0)" } ?? ""))
            if let fault = state.hookFaults[hook] { return .failure(fault) }
            let all = Array(state.hookDeliveries[hook, default: []].reversed())
            let start = min(cursor.flatMap { Int($0) } ?? 0, all.count)
            let end = min(start + min(max(perPage, 1), 100), all.count)
            return .success(
                HookDeliveryPage(deliveries: Array(all[start..<end]), nextCursor: end < all.count ? "\(end)" : nil)
            )
        }
        return try result.get()
    }

    /// GitHub delivers it again at once, with the same GUID; the receiver here takes it (`OK`).
    package func redeliver(_ hook: WebhookHook, deliveryID: Int64) async throws(GitHubAPIError) {
        let result = state.withLock { state -> Result<String, GitHubAPIError> in
            state.calls.append("redeliver \(hook) \(deliveryID)")
            if let fault = state.hookFaults[hook] ?? state.redeliveryFaults[hook] { return .failure(fault) }
            guard let original = state.hookDeliveries[hook, default: []].first(where: { $0.id == deliveryID }) else {
                return .failure(Self.error(.notFound, status: 404))
            }
            return .success(original.guid)
        }
        deliver(try result.get(), through: hook)
    }

    /// The deliveries asked for again, in order.
    package var redeliveries: [String] { state.withLock { $0.calls.filter { $0.hasPrefix("redeliver ") } } }
}
