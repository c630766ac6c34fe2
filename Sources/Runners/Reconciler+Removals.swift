import GitHub
import Kubernetes
import Logging

/// Proven removals: what the reapers delete, each only with proof (ownership, the recorded link, a fresh look).
extension Reconciler {
    /// Whether the registration carries this deployment's marker and a name this service gives.
    func isOurs(_ runner: RegisteredRunner) -> Bool {
        runner.carries(ownerLabel) && RunnerName(parsing: runner.name, as: .registration) != nil
    }

    func fence() throws(LostLeadership) {
        try checkStopping()
        guard isLeader() else { throw LostLeadership() }
    }

    /// Spends `points` of the minute's budget for one call of acting; false when they are spent (the call waits for
    /// a later cycle). Stops the cycle once shutdown came.
    func spend(_ points: Int) throws(LostLeadership) -> Bool {
        try checkStopping()
        return budget.spend(points)
    }

    /// The repository of a runner Job's recorded registration: where that registration was listed, else the one
    /// known repository its owner and repository labels name; nil when that cannot be told.
    func repository(
        of job: JobSummary,
        registrationID: Int64,
        in world: World
    ) -> RepositoryRegistry.Repository? {
        if let (repository, _) = world.registration(id: registrationID) { return repository }
        let owner = job.labels[RunnerJob.ownerNameLabel]
        let name = job.labels[RunnerJob.repositoryNameLabel]
        let named = world.known.filter {
            RunnerJob.labelValue($0.owner) == owner && RunnerJob.labelValue($0.name) == name
        }
        return named.count == 1 ? named.first : nil
    }

    /// Removes a runner Job that cannot run, saying why. A Job with a registration recorded on it goes only after
    /// that registration did: a fresh look shows it ours and not busy, and GitHub, which refuses to delete a runner
    /// at work (422), deleted it, or it is gone. So a runner that takes a job between the look and the removal keeps
    /// its Job. Kept, too, when a registration of ours named for it is busy, or when its repository is not known.
    func remove(
        _ job: JobSummary,
        reason: String,
        detail: String,
        in world: World
    ) async throws(LostLeadership) -> Bool {
        let metadata: Logger.Metadata = ["runner_job": "\(job.name)", "reason": "\(reason)"]
        let busyByName = world.registrations.values.joined().contains { runner in
            isOurs(runner) && runner.busy != false
                && RunnerName(parsing: runner.name, as: .registration)?.jobName == job.name
        }
        if busyByName {
            logger.notice("reaper: runner job kept; its runner is at work or cannot be checked", metadata: metadata)
            return false
        }
        guard let record = world.records[job.name] else {
            // No registration recorded on it: its provisioning never got that far, so no runner of it can work.
            try fence()
            return await deleteJob(job, reason: reason, detail: detail)
        }
        guard let repository = repository(of: job, registrationID: record.id, in: world) else {
            logger.notice("reaper: runner job kept; the repository of its runner is not known", metadata: metadata)
            return false
        }
        let listed = world.registration(id: record.id)?.1
        let runner = listed ?? RegisteredRunner(id: record.id, name: record.name, labels: [ownerLabel])
        switch try await removeRegistration(runner, in: repository, reason: reason) {
        case .deleted:
            try fence()
            return await deleteJob(job, reason: reason, detail: detail, count: false)
        case .gone:
            try fence()
            return await deleteJob(job, reason: reason, detail: detail)
        case .busy, .failed:
            logger.notice("reaper: runner job kept; its runner is at work or cannot be checked", metadata: metadata)
            return false
        }
    }

    /// Deletes exactly this Job (its uid as a precondition), counted under `reason` unless its registration was.
    /// `level`: of the log line (a finished runner's cleanup is routine).
    func deleteJob(
        _ job: JobSummary,
        reason: String,
        detail: String,
        count: Bool = true,
        level: Logger.Level = .warning
    ) async -> Bool {
        do {
            try await kubernetes.deleteRunnerObject(
                name: job.name,
                resource: job.resource,
                namespace: namespace,
                uid: job.uid
            )
            if count { metrics.countReaped(reason) }
            logger.log(
                level: level,
                "reaper: removed a runner job",
                metadata: ["runner_job": "\(job.name)", "reason": "\(reason)", "detail": "\(detail)"]
            )
            return true
        } catch {
            logger.warning(
                "reaper: removing a runner job failed",
                metadata: ["runner_job": "\(job.name)", "reason": "\(reason)", "error": "\(error)"]
            )
            return false
        }
    }

    enum RegistrationRemoval: Equatable { case deleted, busy, gone, failed }

    /// Deletes a registration of this deployment after a fresh look shows it still exists, still carries the
    /// marker and is not busy. GitHub refuses to delete a runner at work (422), which keeps it.
    func removeRegistration(
        _ runner: RegisteredRunner,
        in repository: RepositoryRegistry.Repository,
        reason: String,
        onlyIfOffline: Bool = false
    ) async throws(LostLeadership) -> RegistrationRemoval {
        var metadata: Logger.Metadata = [
            "repo": "\(repository)", "runner.id": "\(runner.id)", "runner.name": "\(runner.name)",
            "reason": "\(reason)",
        ]
        guard try spend(PointsBudget.read) else {
            logger.info("reaper: the minute's GitHub points are spent; kept until a later cycle", metadata: metadata)
            return .failed
        }
        let fresh: RegisteredRunner?
        do {
            fresh = try await github.runner(owner: repository.owner, repo: repository.name, scope: scope, id: runner.id)
        } catch {
            logger.warning(
                "reaper: cannot look at a registration; kept",
                metadata: metadata.merging(["error": "\(error)"]) { $1 }
            )
            return .failed
        }
        guard let fresh else { return .gone }
        guard fresh.busy == false, fresh.carries(ownerLabel), fresh.name == runner.name else {
            logger.info("reaper: registration is at work; kept", metadata: metadata)
            return .busy
        }
        if onlyIfOffline && fresh.status != "offline" {
            logger.info("reaper: registration is online again; kept", metadata: metadata)
            return .busy
        }
        try fence()
        guard try spend(PointsBudget.write) else {
            logger.info("reaper: the minute's GitHub points are spent; kept until a later cycle", metadata: metadata)
            return .failed
        }
        if let refusal = contentBudget?.take(contentKey(repository.owner)) {
            metadata["detail"] = "\(refusal)"
            logger.info(
                "reaper: the credential's content-creating budget is spent; kept until later",
                metadata: metadata
            )
            return .failed
        }
        do {
            try await github.deleteRunner(
                owner: repository.owner,
                repo: repository.name,
                scope: scope,
                runnerID: runner.id
            )
        } catch  where error.kind == .validation {
            logger.info("reaper: registration became busy; kept", metadata: metadata)
            return .busy
        } catch  where error.kind == .notFound {
            return .gone
        } catch {
            metadata["error"] = "\(error)"
            logger.warning("reaper: deleting a registration failed", metadata: metadata)
            return .failed
        }
        metrics.countReaped(reason)
        logger.notice("reaper: deleted a runner registration", metadata: metadata)
        return .deleted
    }
}
