import GitHub
import Kubernetes
import Logging
import Support

/// Provisions one ephemeral runner per queued job: a JIT runner registration on GitHub and a Kubernetes Job.
///
/// The critical path is three sequential round trips:
/// 1. create the Job `runner-<job id>` ∥ ask GitHub whether the job still waits for a runner;
/// 2. generate the JIT config (only the request that created the Job gets here, so at most one runner is
///    registered per job, whatever the number of deliveries or replicas);
/// 3. create the Secret holding the JIT config, owned by the Job (its UID comes from step 1).
///
/// On any failure after a step succeeded, what it made is removed: the Job (with the Secret, through the owner
/// reference) and the GitHub registration. No orphaned runner registrations, no Job waiting for a Secret.
package final class JITRunnerProvisioner: RunnerProvisioner {
    private let github: any GitHubAPI
    private let kubernetes: any KubernetesAPI
    private let settings: RunnerJob.Settings
    /// The profiles in force (`PROFILES_FILE`); nil: every job gets `settings`, the environment's profile.
    private let profiles: RunnerProfileStore?
    private let capacity: ProfileCapacity
    private let scope: RunnerScope
    private let contentBudget: ContentBudget?
    private let contentKey: @Sendable (_ owner: String) -> String
    private let runnerGroups: RunnerGroups
    private let monitor: ClusterMonitor
    /// The retry pauses' clock.
    private let clock: MonotonicClock
    private let logger: Logger

    /// - Parameters:
    ///   - runnerGroupID: the group of every runner (`RUNNER_GROUP_ID`); ignored when `runnerGroup` names one.
    ///   - scope: where runners are registered (`RUNNER_SCOPE`): the job's repository, or its owner organization.
    ///   - runnerGroup: `RUNNER_GROUP`: an organization runner group by name, resolved per organization.
    ///   - contentBudget: GitHub's limits on content-creating requests (JIT configurations, runner deletions);
    ///     none when nil.
    ///   - contentKey: the credential an owner's calls are made with (its key in `contentBudget`); one for every
    ///     owner unless told.
    ///   - profiles: the profiles a job's labels choose from; nil: `settings` for every job. Their namespace and
    ///     owner label are `settings`'.
    package init(
        github: any GitHubAPI,
        kubernetes: any KubernetesAPI,
        settings: RunnerJob.Settings,
        runnerGroupID: Int,
        monitor: ClusterMonitor,
        clock: some Clock<Duration> = ContinuousClock(),
        logger: Logger,
        scope: RunnerScope = .repository,
        runnerGroup: String? = nil,
        contentBudget: ContentBudget? = nil,
        contentKey: @escaping @Sendable (_ owner: String) -> String = { _ in "" },
        profiles: RunnerProfileStore? = nil,
        capacity: ProfileCapacity = ProfileCapacity()
    ) {
        self.profiles = profiles
        self.capacity = capacity
        self.contentBudget = contentBudget
        self.contentKey = contentKey
        self.clock = MonotonicClock(clock)
        self.github = github
        self.kubernetes = kubernetes
        self.settings = settings
        self.scope = scope
        runnerGroups = RunnerGroups(runnerGroup.map { .named($0) } ?? .id(runnerGroupID), github: github)
        self.monitor = monitor
        self.logger = logger
    }

    package func readiness() async -> Readiness {
        await monitor.readiness()
    }

    package func provision(_ request: RunnerRequest) async throws(ProvisioningError) -> ProvisionOutcome {
        try await provision(request, while: { true })
    }

    /// Provisions, checking `mayAct` (the reconciler's leadership) just before each mutating call; once it is false,
    /// what this attempt made is removed and the attempt fails.
    package func provision(
        _ request: RunnerRequest,
        while mayAct: @escaping @Sendable () -> Bool
    ) async throws(ProvisioningError) -> ProvisionOutcome {
        let fenced = ProvisioningError(status: 503, reason: "this replica no longer leads; provisioning stopped")
        var labels = request.labels
        let namespace = settings.namespace
        var metadata: Logger.Metadata = [
            "repo": "\(request.owner)/\(request.repository)", "job.id": "\(request.jobID)",
            "runner_job": "\(request.runnerJobName)",
        ]
        if let delivery = request.deliveryID { metadata["delivery"] = "\(delivery)" }

        // A replacement asked for by an `in_progress` delivery: the runner that took the other job must be one this
        // deployment made, proven by the registration recorded on one of its runner Jobs; a name is no proof.
        if let taken = request.takenByRunner {
            let selector =
                RunnerJob.selector(ownerLabel: settings.ownerLabel) + ",\(RunnerJob.runnerNameLabel)=\(taken)"
            let recorded: [SecretSummary]
            do {
                recorded = try await kubernetes.listSecrets(namespace: namespace, labelSelector: selector)
            } catch {
                logger.warning(
                    "checking the runner's owner failed",
                    metadata: metadata.merging(["error": "\(error)"]) { $1 }
                )
                throw Self.provisioningError(error)
            }
            guard recorded.contains(where: { $0.labels[RunnerJob.jobIDLabel] == String(request.jobID) }) else {
                logger.info(
                    "runner is not one of this deployment's; no replacement",
                    metadata: metadata.merging(["runner.name": "\(RunnerJob.labelValue(taken))"]) { $1 }
                )
                return .foreignRunner(name: taken)
            }
        }

        // A replacement asked for by a delivery does not know the job's labels, and they choose its profile: read
        // the job first (one more round trip, on this rare path only).
        var knownJob: Result<GitHubJob, GitHubAPIError>?
        if labels.isEmpty && profiles != nil {
            switch await capture({ () async throws(GitHubAPIError) in
                try await self.jobWithRetry(owner: request.owner, repo: request.repository, id: request.jobID)
            }) {
            case .success(let githubJob) where !githubJob.isWaitingForRunner:
                logger.info(
                    "job is no longer queued; nothing made",
                    metadata: metadata.merging(["github.status": "\(githubJob.status)"]) { $1 }
                )
                return .notQueued(status: githubJob.status)
            case .success(let githubJob):
                labels = githubJob.labels
                knownJob = .success(githubJob)
            case .failure(let error):
                logger.warning(
                    "reading the job from GitHub failed",
                    metadata: metadata.merging(["error": "\(error)"]) { $1 }
                )
                throw Self.provisioningError(error)
            }
        }
        // A warm pool's runner is its profile's, by name.
        let chosen = request.warm.flatMap { warm in profiles?.current.profiles.first { $0.name == warm.pool } }
        guard let profile = chosen ?? profile(for: labels) else {
            logger.warning(
                "no runner profile takes the job's labels",
                metadata: metadata.merging(["job.labels": "\(labels.joined(separator: ","))"]) { $1 }
            )
            throw ProvisioningError(status: 503, reason: "no runner profile takes the job's labels")
        }
        if let name = profile.name { metadata["profile"] = "\(name)" }
        var resolved = request
        resolved.labels = labels  // a replacement's, read from GitHub above
        let job = profile.render(for: resolved)

        guard mayAct() else { throw fenced }
        // Over the profile's cap, nothing is made: the reconciler provisions the job once a place frees.
        let place = try await takePlace(for: job.name, in: profile, metadata: metadata)
        if case .full(let active) = place {
            let refusal = "profile \(profile.displayName): \(active) of maxRunners \(profile.maxRunners ?? 0) active"
            logger.notice("provisioning deferred", metadata: metadata.merging(["reason": "\(refusal)"]) { $1 })
            return .deferred(reason: refusal)
        }
        var holdsPlace = place == .reserved
        defer { if holdsPlace, let name = profile.name { capacity.release(job.name, profile: name) } }
        // Nothing is made while the credential's content-creating budget is spent: the reconciler comes back.
        if let refusal = contentBudget?.take(contentKey(request.owner)) {
            logger.notice("provisioning deferred", metadata: metadata.merging(["reason": "\(refusal)"]) { $1 })
            return .deferred(reason: refusal)
        }
        // Round 1: the Job (the lock on this GitHub job) and GitHub's view of the job, at the same time.
        async let jobStatus = capture { () async throws(GitHubAPIError) in
            // A warm pool's runner waits for whichever job comes: there is no job to ask about.
            if request.warm != nil { return GitHubJob(id: 0, status: "queued", labels: request.labels) }
            if let knownJob { return try knownJob.get() }
            return try await self.jobWithRetry(owner: request.owner, repo: request.repository, id: request.jobID)
        }
        async let createdJob = capture { () async throws(KubernetesAPIError) in
            try await self.createJobWithRetry(job)
        }
        let (status, created) = await (jobStatus, createdJob)

        let uid: String
        switch created {
        case .success(let object):
            monitor.recordAnswer()
            uid = object.uid
            if holdsPlace, let name = profile.name {
                capacity.created(job.name, profile: name)
                holdsPlace = false
            }
        case .failure(let error) where error.kind == .alreadyExists:
            monitor.recordAnswer()
            logger.info("runner job already exists; nothing registered", metadata: metadata)
            return .alreadyProvisioned(runnerJob: job.name)
        case .failure(let error):
            logger.warning("creating the runner job failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            throw Self.provisioningError(error)
        }

        /// Removes what this attempt made: its runner object and, once registered, its registration.
        func undo(registered runner: Int64? = nil) async {
            await cleanUp(
                jobName: job.name,
                resource: job.resource,
                uid: uid,
                runner: runner,
                request: request,
                profile: profile.name,
                metadata: metadata
            )
        }

        switch status {
        case .success(let githubJob) where !githubJob.isWaitingForRunner:
            logger.info(
                "job is no longer queued; runner job removed",
                metadata: metadata.merging(["github.status": "\(githubJob.status)"]) { $1 }
            )
            await undo()
            return .notQueued(status: githubJob.status)
        case .success(let githubJob):
            if labels.isEmpty { labels = githubJob.labels }  // a replacement runner: the labels come from GitHub
        case .failure(let error):
            logger.warning(
                "reading the job from GitHub failed",
                metadata: metadata.merging(["error": "\(error)"]) { $1 }
            )
            await undo()
            throw Self.provisioningError(error)
        }

        // Round 2: the JIT registration, with the profile's labels (or the job's) and this deployment's marker (a
        // job asking for [self-hosted, linux] still matches a runner with one more label).
        labels = profile.registrationLabels(for: labels)
        guard mayAct() else {
            await undo()
            throw fenced
        }
        let jit: JITConfig
        do {
            jit = try await registerRunner(for: request, labels: labels, jobName: job.name)
        } catch {
            logger.warning("generating the JIT config failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            await undo()
            throw Self.provisioningError(error)
        }
        metadata["runner.id"] = "\(jit.runnerID)"
        metadata["runner.name"] = "\(jit.runnerName)"

        guard mayAct() else {
            await undo(registered: jit.runnerID)
            throw fenced
        }
        // Round 3: the Secret the runner reads its JIT config from.
        do throws(KubernetesAPIError) {
            let secret = job.secret(
                jitConfig: jit.encodedConfig.value,
                jobUID: uid,
                runnerID: jit.runnerID,
                runnerName: jit.runnerName
            )
            do {
                try await kubernetes.createSecret(secret, namespace: namespace)
            } catch  where error.isTransient && !Task.isCancelled {
                await pauseBeforeRetry()
                do {
                    try await kubernetes.createSecret(secret, namespace: namespace)
                } catch  where error.kind == .alreadyExists {}  // the first attempt did succeed
            }
        } catch {
            logger.warning("creating the JIT secret failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            await undo(registered: jit.runnerID)
            throw Self.provisioningError(error)
        }
        logger.info("runner registered and job created", metadata: metadata)
        return .created(runnerJob: job.name)
    }

    /// The profile for a job with these labels: the first that takes it, or the environment's without profiles.
    private func profile(for labels: [String]) -> RunnerProfile? {
        guard let profiles else { return RunnerProfile(name: nil, matcher: .selfHosted, settings: settings) }
        return profiles.current.profile(for: labels)
    }

    /// Takes a place under the profile's `maxRunners` for `job` (`counted` when it has no cap).
    private func takePlace(
        for job: String,
        in profile: RunnerProfile,
        metadata: Logger.Metadata
    ) async throws(ProvisioningError) -> ProfileCapacity.Reservation {
        guard let cap = profile.maxRunners, let name = profile.name else { return .counted }
        let list = capacity.listStarting()
        let selector =
            RunnerJob.selector(ownerLabel: settings.ownerLabel)
            + ",\(RunnerProfile.profileLabel)=\(RunnerJob.labelValue(name))"
        var active: Set<String> = []
        do {
            let jobs = try await kubernetes.listJobs(namespace: settings.namespace, labelSelector: selector, limit: nil)
            active = Set(jobs.filter { !$0.isFinished }.map(\.name))
            // A backend's objects are no Jobs, and none is ever finished: each counts until the reaper removes it.
            if let resource = profile.settings.backend?.resource {
                let objects = try await kubernetes.listObjects(
                    resource: resource,
                    namespace: settings.namespace,
                    labelSelector: selector
                )
                active.formUnion(objects.map(\.name))
            }
        } catch {
            logger.warning(
                "counting the profile's runner jobs failed",
                metadata: metadata.merging(["error": "\(error)"]) { $1 }
            )
            throw Self.provisioningError(error)
        }
        return capacity.reserve(job, profile: name, cap: cap, listed: active, list: list)
    }

    /// The annotation of a runner Job that names the provisioning attempt which created it.
    static let attemptAnnotation = "kube-actions-runner/attempt"

    /// Creates the Job, retried once after a short jittered pause when the failure is transient.
    ///
    /// A create whose answer was lost (the per-call timeout while the API server's priority and fairness queue held
    /// it, a reset connection, a 5xx) may still have made the Job; the retry then answers 409 AlreadyExists. The Job
    /// carries this attempt's random token (`attemptAnnotation`), so one read of it tells this attempt's own Job,
    /// which provisioning goes on with, from another delivery's or replica's, which stays the lock it is.
    private func createJobWithRetry(_ job: RunnerJob) async throws(KubernetesAPIError) -> CreatedObject {
        let attempt = String(UInt64.random(in: .min ... .max), radix: 16)
        var annotated = job
        annotated.job = Self.annotating(job.job, Self.attemptAnnotation, attempt)
        do {
            return try await kubernetes.createRunnerObject(annotated)
        } catch  where error.isTransient && !Task.isCancelled {
            await pauseBeforeRetry()
            do {
                return try await kubernetes.createRunnerObject(annotated)
            } catch  where error.kind == .alreadyExists {
                // Unproven (the read failed, the Job is another's, or the object is a custom backend's, which is
                // not read back here): the 409 stands, and the reaper removes an object left without its Secret.
                guard job.resource == nil,
                    let existing = try? await kubernetes.job(named: job.name, namespace: job.namespace),
                    existing.annotations[Self.attemptAnnotation] == attempt
                else { throw error }
                logger.info(
                    "runner job made by the attempt whose answer was lost",
                    metadata: ["runner_job": "\(job.name)"]
                )
                return CreatedObject(name: job.name, uid: existing.uid)
            }
        }
    }

    /// `manifest` with `key: value` added to its `metadata.annotations`.
    static func annotating(_ manifest: JSONValue, _ key: String, _ value: String) -> JSONValue {
        guard case .object(var fields) = manifest,
            let metadataIndex = fields.firstIndex(where: { $0.0 == "metadata" }),
            case .object(var metadata) = fields[metadataIndex].1
        else { return manifest }
        if let index = metadata.firstIndex(where: { $0.0 == "annotations" }),
            case .object(var annotations) = metadata[index].1
        {
            annotations.append((key, .string(value)))
            metadata[index].1 = .object(annotations)
        } else {
            metadata.append(("annotations", .object([(key, .string(value))])))
        }
        fields[metadataIndex].1 = .object(metadata)
        return .object(fields)
    }

    /// GET job, retried once after a short jittered pause when the failure is transient.
    private func jobWithRetry(owner: String, repo: String, id: Int64) async throws(GitHubAPIError) -> GitHubJob {
        do {
            return try await github.job(owner: owner, repo: repo, id: id)
        } catch  where error.isTransient && !Task.isCancelled {
            await pauseBeforeRetry()
            return try await github.job(owner: owner, repo: repo, id: id)
        }
    }

    /// Registers a runner named after the Job plus a random suffix; a name clash (409) gets one new name.
    private func registerRunner(
        for request: RunnerRequest,
        labels: [String],
        jobName: String
    ) async throws(GitHubAPIError)
        -> JITConfig
    {
        let runnerGroupID = try await runnerGroups.id(for: request.owner)
        func attempt() async throws(GitHubAPIError) -> JITConfig {
            try await github.generateJITConfig(
                owner: request.owner,
                repo: request.repository,
                scope: scope,
                JITConfigRequest(
                    name: request.runnerName.registrationName(suffix: randomSuffix()),
                    runnerGroupID: runnerGroupID,
                    labels: labels
                )
            )
        }
        do {
            return try await attempt()
        } catch  where error.kind == .conflict || (error.isTransient && !Task.isCancelled) {
            if let refusal = contentBudget?.take(contentKey(request.owner)) {
                throw GitHubAPIError(endpoint: error.endpoint, kind: .rateLimited, message: "not retried: \(refusal)")
            }
            // A name clash gets a new name; a 5xx or no answer one more try (with a new name too, so a registration
            // the failed attempt may have made cannot clash; recorded on no Job, the reaper deletes it as a leftover).
            if error.isTransient { await pauseBeforeRetry() }
            return try await attempt()
        }
    }

    /// One fast retry after a transient failure, with jitter, well inside the webhook's deadline.
    private func pauseBeforeRetry() async {
        try? await clock.sleep(for: .milliseconds(Int.random(in: 100...300)))
    }

    /// Removes what a failed attempt made — exactly the Job it created (`uid`), never another of that name — and gives
    /// back its place under `profile`'s cap. Runs to completion even when the request was cancelled (deadline).
    private func cleanUp(
        jobName: String,
        resource: KubernetesResource?,
        uid: String,
        runner: Int64?,
        request: RunnerRequest,
        profile: String?,
        metadata: Logger.Metadata
    ) async {
        let kubernetes = self.kubernetes
        let github = self.github
        let logger = self.logger
        let namespace = settings.namespace
        let scope = self.scope
        if runner != nil { contentBudget?.charge(contentKey(request.owner)) }
        if let profile { capacity.release(jobName, profile: profile) }  // the Job is removed: its place is free
        let work = Task.detached {
            if let runner {
                do throws(GitHubAPIError) {
                    try await github.deleteRunner(
                        owner: request.owner,
                        repo: request.repository,
                        scope: scope,
                        runnerID: runner
                    )
                } catch {
                    logger.error(
                        "removing the unused runner registration failed",
                        metadata: metadata.merging(["error": "\(error)"]) { $1 }
                    )
                }
            }
            do throws(KubernetesAPIError) {
                try await kubernetes.deleteRunnerObject(
                    name: jobName,
                    resource: resource,
                    namespace: namespace,
                    uid: uid
                )
            } catch  where error.kind != .notFound {
                logger.error("removing the runner job failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            } catch {}
        }
        if !Task.isCancelled {
            await work.value
        }
    }

    // MARK: - Errors

    static func provisioningError(_ error: GitHubAPIError) -> ProvisioningError {
        switch error.kind {
        case .rateLimited:
            ProvisioningError(
                status: 503,
                reason: "GitHub rate limit reached"
                    + (error.retryAt.map { "; resets at \(Timestamps.seconds($0))" } ?? "")
            )
        case .transport:
            ProvisioningError(status: 503, reason: "GitHub did not answer: \(error.message)")
        case .server:
            ProvisioningError(status: 502, reason: "GitHub answered \(error.status ?? 500)")
        case .unauthorized where error.status == nil:
            // No credential for the owner: the message says which setting to change.
            ProvisioningError(status: 502, reason: error.message)
        case .unauthorized where error.endpoint.hasPrefix("POST /app/") || error.endpoint.hasSuffix("/installation"):
            ProvisioningError(status: 502, reason: "GitHub rejected the GitHub App's JWT (401)")
        case .unauthorized:
            ProvisioningError(status: 502, reason: "GitHub rejected the token (401)")
        case .notFound where error.endpoint.hasPrefix("POST /app/") || error.endpoint.hasSuffix("/installation"):
            // The GitHub App is not installed where the job is: the message names the account.
            ProvisioningError(status: 502, reason: error.message)
        case .forbidden:
            ProvisioningError(
                status: 502,
                reason: "the GitHub token may not \(error.endpoint)"
                    + (error.acceptedPermissions.map { " (needs \($0))" } ?? "")
            )
        case .notFound:
            ProvisioningError(status: 502, reason: "GitHub: not found, or the token cannot see the repository (404)")
        case .conflict, .validation:
            ProvisioningError(status: 502, reason: "GitHub refused the runner: \(error.message)")
        case .unexpectedResponse:
            ProvisioningError(
                status: 502,
                reason: "GitHub sent an unexpected answer (\(error.status.map { String($0) } ?? "-"))"
            )
        }
    }

    static func provisioningError(_ error: KubernetesAPIError) -> ProvisioningError {
        switch error.kind {
        case .transport, .unavailable:
            ProvisioningError(status: 503, reason: "Kubernetes API unavailable: \(error.message)")
        case .forbidden:
            ProvisioningError(
                status: 502,
                reason: "Kubernetes RBAC denies \(error.verb) \(error.resource) in \(error.namespace)"
            )
        case .invalid:
            ProvisioningError(status: 502, reason: "Kubernetes rejected the \(error.resource): \(error.message)")
        case .unauthorized:
            ProvisioningError(status: 502, reason: "Kubernetes rejected the service's credentials")
        default:
            ProvisioningError(
                status: 502,
                reason: "Kubernetes \(error.verb) \(error.resource) failed: \(error.message)"
            )
        }
    }
}

/// The outcome of a throwing async call as a value, so two calls can run side by side with `async let`.
func capture<T, E: Error>(_ body: () async throws(E) -> T) async -> Result<T, E> {
    do {
        return .success(try await body())
    } catch {
        return .failure(error)
    }
}

/// Five lowercase base-36 characters, to make runner names unique: the digits of one draw from the system's
/// generator (one `getrandom` per name, where a draw per character made five).
package func randomSuffix() -> String {
    let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)
    var value = Int.random(in: 0..<60_466_176)  // 36^5
    var characters = [UInt8](repeating: 0, count: 5)
    for index in characters.indices {
        characters[index] = alphabet[value % 36]
        value /= 36
    }
    return String(decoding: characters, as: UTF8.self)
}
