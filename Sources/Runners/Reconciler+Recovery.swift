import GitHub
import Logging
import Support

/// Recovery: queued jobs the webhook path missed get a runner, through the same provisioner as a delivery.
extension Reconciler {
    /// Each listed repository's supply and demand (`Reconciler+SupplyAndDemand`). A Job removed this cycle counts as
    /// finished: its replacement takes the next name, since its Secret may outlive it for a moment (the garbage
    /// collector deletes it in the background).
    func plans(for world: World, _ cycle: inout Cycle) -> [RepositoryRegistry.Repository: Plan] {
        let jobs = world.jobs.map { job in
            var job = job
            if cycle.removed.contains(job.name) { job.isFinished = true }
            return job
        }
        var plans: [RepositoryRegistry.Repository: Plan] = [:]
        for repository in world.repositories {
            guard let queued = world.queued[repository] else { continue }
            plans[repository] = Self.plan(
                queued: queued,
                running: world.running[repository] ?? [],
                runners: world.registrations[repository] ?? [],
                jobs: jobs,
                records: world.records,
                isOurs: isOurs,
                // A registration missing from a list cut at its limit may be further on: not known to be gone.
                isYoung: {
                    world.truncated.contains(repository)
                        || seenFor("young:\($0)", of: repository, in: &cycle) < configuration.grace
                }
            )
        }
        return plans
    }

    /// Queued jobs that match, older than `grace` (the webhook path goes first) and with no runner that can take
    /// them, are provisioned, at most `maxProvisionsPerCycle` a cycle; a job whose runner Job exists but cannot serve
    /// it is replaced at once. Also counts the queued jobs and those queued too long.
    func recoverQueuedJobs(
        in world: World,
        plans: [RepositoryRegistry.Repository: Plan],
        _ cycle: inout Cycle,
        summary: inout Summary
    ) async throws(LostLeadership) {
        var tooLong = 0
        var provisioned = 0
        defer { metrics.jobsQueuedTooLong.set(Int64(tooLong)) }
        var pointsSpent = false
        for repository in world.repositories {
            guard let queued = world.queued[repository], let plan = plans[repository] else { continue }
            var matched = false
            for job in queued where matcher.matches(job.labels) {
                matched = true
                summary.queued += 1
                if age(of: job) >= Double(configuration.tooLong.components.seconds) { tooLong += 1 }
            }
            // A matching job keeps its repository known (it may have had no delivery).
            if matched { repositories.note(owner: repository.owner, repo: repository.name, recent: false) }
            // Without the registrations, supply is unknown: provision only jobs with no runner Job at all.
            let registrationsKnown = world.registrations[repository] != nil
            for need in plan.unserved where matcher.matches(need.job.labels) {
                guard registrationsKnown || need.request == nil,
                    let request = request(for: need, in: repository)
                else { continue }
                guard provisioned < configuration.maxProvisionsPerCycle, !pointsSpent else {
                    summary.result = "partial"
                    break
                }
                try fence()
                // A provisioning reads the job (a GET) and registers its runner (a POST).
                guard try spend(PointsBudget.read + PointsBudget.write) else {
                    summary.result = "partial"
                    pointsSpent = true
                    break
                }
                provisioned += 1
                if await recover(request, in: repository, age: age(of: need.job), summary: &summary) {
                    // Deferred before any call (a profile at its maxRunners, a spent content budget): neither a
                    // provisioning of this cycle nor points, so a capped profile's queue starves no other job.
                    provisioned -= 1
                    budget.refund(PointsBudget.read + PointsBudget.write)
                }
            }
        }
    }

    /// Seconds since GitHub queued the job, by the wall time of the injected clock when the decision is made
    /// (GitHub's `created_at` is a wall time).
    private func age(of job: GitHubJob) -> Double {
        job.createdAt.flatMap(Timestamps.parse).map { clock.epochSeconds - $0 } ?? 0
    }

    /// The runner request for an unserved job, or nil while it must wait: held off after its runner could not run,
    /// younger than the grace period, its runner's taker not known yet, or too many attempts already.
    private func request(for need: Plan.Need, in repository: RepositoryRegistry.Repository) -> RunnerRequest? {
        let id = String(need.job.id)
        if let hold = state.withLock({ $0.heldOff[id] }), clock.now < hold.until {
            logger.info(
                "reconciler: not provisioning again yet; its last runner could not run",
                metadata: ["repo": "\(repository)", "job.id": "\(id)", "reason": "\(hold.reason)"]
            )
            return nil
        }
        // The webhook path goes first; a job whose runner Job exists but cannot serve it is replaced at once. A job
        // within its grace has its repository visited again next cycle, not a whole round later.
        if need.request == nil && age(of: need.job) < Double(configuration.grace.components.seconds) {
            repositories.prioritize(owner: repository.owner, repo: repository.name)
            return nil
        }
        var request = RunnerRequest(
            owner: repository.owner,
            repository: repository.name,
            jobID: need.job.id,
            runID: need.job.runID ?? 0,
            jobName: need.job.name ?? "",
            labels: need.job.labels,
            deliveryID: nil
        )
        if let name = need.request {
            if need.takerUnknown {
                logger.info(
                    "reconciler: the runner made for this job took another; which one is not known yet",
                    metadata: ["repo": "\(repository)", "job.id": "\(id)"]
                )
                return nil
            }
            guard name.attempt <= configuration.maxAttempts else {
                logger.warning(
                    "reconciler: runners of this job keep exiting before taking it; not replaced again",
                    metadata: ["repo": "\(repository)", "job.id": "\(id)", "attempts": "\(name.attempt - 1)"]
                )
                return nil
            }
            request.replacing = name.after
            request.attempt = name.attempt
        }
        return request
    }

    /// Provisions one queued job through the same provisioner as a delivery; true when it was deferred.
    @discardableResult
    func recover(
        _ request: RunnerRequest,
        in repository: RepositoryRegistry.Repository,
        age: Double,
        summary: inout Summary
    ) async -> Bool {
        let metadata: Logger.Metadata = [
            "repo": "\(repository)", "job.id": "\(request.jobID)", "queued_for_s": "\(Int(age))",
            "job.labels": "\(request.labels.joined(separator: ","))", "runner_job": "\(request.runnerJobName)",
        ]
        do {
            switch try await provisioner.provision(request, while: isLeader) {
            case .created(let name):
                // Its registrations matter from now on (`needsRegistrations`), before the next list of runner Jobs.
                state.withLock {
                    _ = $0.servedRepositories?.insert(Self.servedKey(owner: request.owner, repo: request.repository))
                }
                summary.recovered += 1
                metrics.countRecovered()
                // A job with no runner Job at all lost its delivery; a replacement serves a job whose runner went.
                if request.replacing == nil && request.attempt == 1 { metrics.countLostJobRecovered(how: "poll") }
                logger.notice(
                    "reconciler: provisioned a queued job the webhook path missed",
                    metadata: metadata.merging(["runner_job": "\(name)"]) { $1 }
                )
            case .alreadyProvisioned, .notQueued, .foreignRunner:
                break
            case .deferred:
                // The credential's content-creating budget, or the profile's places, are spent; a later cycle comes
                // back to it.
                summary.result = "partial"
                return true
            }
        } catch {
            logger.warning("reconciler: provisioning failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
        }
        return false
    }
}
