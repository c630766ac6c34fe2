import GitHub
import Kubernetes
import Logging

/// Warm pools: each pool's idle runners are topped up to `minIdle` per repository, under its cap, and the idle
/// reaper keeps that many.
extension Reconciler {
    /// The configured pools and the profiles' pools in force.
    var warmPools: [WarmPool] { configuration.warmPools + matcher.warmPools }

    /// The resources of the custom backends whose objects the reconciler lists beside the Jobs.
    var customResources: [KubernetesResource] {
        var all = configuration.customResources
        for resource in matcher.customResources where !all.contains(resource) { all.append(resource) }
        return all
    }

    /// A pool's live runner Jobs in one repository, and which of them wait idle (registered and not busy, or still
    /// being provisioned). The profile's runners made for a job count too: one whose job a warm runner took waits
    /// idle like a warm one, with the same labels.
    func warmRunners(
        of pool: WarmPool,
        in repository: RepositoryRegistry.Repository,
        world: World,
        cycle: Cycle
    ) -> (live: [JobSummary], idle: [JobSummary]) {
        let live = world.jobs.filter { job in
            !job.isFinished && !cycle.removed.contains(job.name) && isOfPool(job, pool)
                && job.labels[RunnerJob.ownerNameLabel] == RunnerJob.labelValue(repository.owner)
                && job.labels[RunnerJob.repositoryNameLabel] == RunnerJob.labelValue(repository.name)
        }
        let idle = live.filter { job in
            guard let record = world.records[job.name] else { return true }  // provisioning
            guard let runner = world.registration(id: record.id)?.1 else { return true }  // not listed yet
            return runner.busy != true
        }
        return (live, idle)
    }

    /// The key under which a pool is held off in one repository after its runner could not run (`heldOff`, which a
    /// job's runner keys by the job's id): no job id is made of these characters.
    static func warmHoldOffKey(pool: String, owner: String, repo: String) -> String {
        "pool:\(RunnerJob.labelValue(pool))/\(RunnerJob.labelValue(owner))/\(RunnerJob.labelValue(repo))"
    }

    /// The hold-off key of a warm runner's Job, by its labels; nil for a job's runner.
    static func warmHoldOffKey(of job: JobSummary) -> String? {
        guard let pool = job.labels[RunnerJob.poolLabel], let owner = job.labels[RunnerJob.ownerNameLabel],
            let repo = job.labels[RunnerJob.repositoryNameLabel]
        else { return nil }
        return "pool:\(pool)/\(owner)/\(repo)"
    }

    func isOfPool(_ job: JobSummary, _ pool: WarmPool) -> Bool {
        let name = RunnerJob.labelValue(pool.name)
        return job.labels[RunnerJob.poolLabel] == name || job.labels[RunnerJob.profileLabel] == name
    }

    /// The registrations the idle reaper keeps for the pools: in each pool and repository, the first `minIdle` idle
    /// ones (by id).
    func warmKept(in world: World, cycle: Cycle) -> Set<Int64> {
        var kept: Set<Int64> = []
        for pool in warmPools {
            for repository in pool.repositories {
                let idle = warmRunners(of: pool, in: repository, world: world, cycle: cycle).idle
                let ids = idle.compactMap { world.records[$0.name]?.id }.sorted()
                kept.formUnion(ids.prefix(pool.minIdle))
            }
        }
        return kept
    }

    /// Tops up each pool in each of its repositories that this cycle visited (its registrations listed), never
    /// past the pool's cap (`maxRunners`: every live runner Job of the profile, warm or not, in any repository).
    func replenishWarmPools(in world: World, _ cycle: inout Cycle, summary: inout Summary) async throws(LostLeadership)
    {
        for pool in warmPools where pool.minIdle > 0 {
            var live = world.jobs.filter { !$0.isFinished && !cycle.removed.contains($0.name) && isOfPool($0, pool) }
                .count
            for repository in pool.repositories where world.registrations[repository] != nil {
                let holdOff = Self.warmHoldOffKey(pool: pool.name, owner: repository.owner, repo: repository.name)
                if let hold = state.withLock({ $0.heldOff[holdOff] }), clock.now < hold.until {
                    logger.info(
                        "reconciler: not making warm runners yet; the pool's last runner could not run",
                        metadata: ["pool": "\(pool.name)", "repo": "\(repository)", "reason": "\(hold.reason)"]
                    )
                    continue
                }
                let idle = warmRunners(of: pool, in: repository, world: world, cycle: cycle).idle.count
                var missing = pool.minIdle - idle
                while missing > 0 {
                    if let cap = pool.maxRunners, live >= cap {
                        logger.info(
                            "reconciler: warm pool at its cap",
                            metadata: ["pool": "\(pool.name)", "repo": "\(repository)", "max_runners": "\(cap)"]
                        )
                        break
                    }
                    try fence()
                    guard try spend(PointsBudget.write) else {
                        summary.result = "partial"
                        return
                    }
                    let request = RunnerRequest.warm(
                        pool: pool.name,
                        owner: repository.owner,
                        repository: repository.name,
                        labels: pool.labels,
                        id: randomSuffix()
                    )
                    let metadata: Logger.Metadata = [
                        "pool": "\(pool.name)", "repo": "\(repository)", "runner_job": "\(request.runnerJobName)",
                    ]
                    do {
                        let outcome = try await provisioner.provision(request, while: isLeader)
                        guard case .created = outcome else {
                            logger.info(
                                "reconciler: warm runner not made",
                                metadata: metadata.merging(["outcome": "\(outcome)"]) { $1 }
                            )
                            break
                        }
                        logger.info("reconciler: warm runner made", metadata: metadata)
                        // Its registration matters from now on (`needsRegistrations`), before the next list of Jobs.
                        state.withLock {
                            _ = $0.servedRepositories?.insert(
                                Self.servedKey(owner: repository.owner, repo: repository.name)
                            )
                        }
                    } catch {
                        logger.warning(
                            "reconciler: making a warm runner failed",
                            metadata: metadata.merging(["error": "\(error)"]) { $1 }
                        )
                        break
                    }
                    live += 1
                    missing -= 1
                }
            }
        }
    }
}
