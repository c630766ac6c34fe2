import Support

/// A queued job that needs a runner, as taken from a verified delivery (or, later, the reconciler).
package struct RunnerRequest: Sendable, Equatable {
    package var owner: String
    package var repository: String
    package var jobID: Int64
    package var runID: Int64
    package var jobName: String
    package var labels: [String]
    /// The delivery that asked for it, for logs; nil when not from a webhook.
    package var deliveryID: String?

    package init(
        owner: String,
        repository: String,
        jobID: Int64,
        runID: Int64,
        jobName: String,
        labels: [String],
        deliveryID: String?
    ) {
        self.owner = owner
        self.repository = repository
        self.jobID = jobID
        self.runID = runID
        self.jobName = jobName
        self.labels = labels
        self.deliveryID = deliveryID
    }

    /// Set when the runner made for `jobID` took this other job instead: a replacement runner is wanted, and the
    /// job's labels come from GitHub (`labels` may be empty).
    package var replacing: Int64? = nil
    /// For a replacement asked for by an `in_progress` delivery: the name of the runner that took the other job.
    /// Provisioning goes ahead only if a runner Job of this deployment records exactly that registration.
    package var takenByRunner: String? = nil
    /// 2... when a finished runner Job of this job is replaced (its runner exited before taking the job).
    package var attempt = 1
    /// A warm pool's runner, made for no job (`jobID` is 0): the pool's name and the runner's random id.
    package var warm: Warm? = nil

    package struct Warm: Sendable, Equatable {
        package var pool: String
        package var id: String
    }

    /// A warm pool's runner in `owner/repository`, registered with `labels`.
    package static func warm(
        pool: String,
        owner: String,
        repository: String,
        labels: [String],
        id: String
    ) -> RunnerRequest {
        var request = RunnerRequest(
            owner: owner,
            repository: repository,
            jobID: 0,
            runID: 0,
            jobName: "",
            labels: labels,
            deliveryID: nil
        )
        request.warm = Warm(pool: pool, id: id)
        return request
    }

    /// The runner Job's name (`RunnerName`): deterministic, so a second delivery for the same job finds the first
    /// Job. A replacement is `runner-<job id>-after-<job its first runner took>`, as deterministic.
    package var runnerName: RunnerName {
        if let warm { return RunnerName(warmID: warm.id) }
        return RunnerName(jobID: jobID, after: replacing, attempt: attempt)
    }

    package var runnerJobName: String { runnerName.jobName }
}

/// What provisioning did.
package enum ProvisionOutcome: Sendable, Equatable {
    /// A runner Job was created.
    case created(runnerJob: String)
    /// A runner Job for this job already existed; nothing new was registered.
    case alreadyProvisioned(runnerJob: String)
    /// GitHub says the job is no longer queued (taken, cancelled or done).
    case notQueued(status: String)
    /// A replacement was asked for a runner this deployment did not make (no runner Job records it): nothing done.
    case foreignRunner(name: String)
    /// The credential's budget of content-creating requests (`ContentBudget`) is spent: nothing done; the
    /// reconciler provisions the job once it frees.
    case deferred(reason: String)
}

/// Provisioning failed; the webhook answers `status` (502 or 503) with `reason`.
package struct ProvisioningError: Error, Equatable, CustomStringConvertible {
    package var status: Int
    /// Short and safe to send to GitHub's delivery log: no secrets, no upstream bodies.
    package var reason: String

    package init(status: Int, reason: String) {
        self.status = status
        self.reason = reason
    }

    package var description: String { reason }
}

/// Turns a queued job into a runner. The webhook path calls it synchronously and answers after it returns.
package protocol RunnerProvisioner: Sendable {
    func provision(_ request: RunnerRequest) async throws(ProvisioningError) -> ProvisionOutcome
    /// As `provision(_:)`, checking `mayAct` just before each mutating call (the reconciler passes its leadership).
    func provision(
        _ request: RunnerRequest,
        while mayAct: @escaping @Sendable () -> Bool
    ) async throws(ProvisioningError) -> ProvisionOutcome
    /// Whether upstream dependencies answer; `/ready` reports it.
    func readiness() async -> Readiness
}

extension RunnerProvisioner {
    /// A provisioner with a single mutating step checks once, before it.
    package func provision(
        _ request: RunnerRequest,
        while mayAct: @escaping @Sendable () -> Bool
    ) async throws(ProvisioningError) -> ProvisionOutcome {
        guard mayAct() else {
            throw ProvisioningError(status: 503, reason: "this replica no longer leads; provisioning stopped")
        }
        return try await provision(request)
    }
}
