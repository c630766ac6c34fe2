import GitHub
import Kubernetes
import Logging
import Support

/// The reapers: one rule each, in the order `act` applies them. Each removes only what carries this deployment's
/// marker and what a fresh look shows nothing is at work on (`Reconciler+Removals`).
extension Reconciler {
    /// Jobs whose pod cannot run are removed, and their job is held off for `failureHoldOff`; Jobs whose pod must
    /// wait (a quota, a passing refusal) are kept and counted in `runner_jobs_waiting`.
    func reapJobsThatCannotRun(in world: World, _ cycle: inout Cycle) async throws(LostLeadership) {
        var waiting = ["quota": 0, "refused": 0]
        for job in world.jobs where !job.isFinished {
            switch verdict(for: job, in: world, seenFor: { seenFor($0, in: &cycle) }) {
            case .none:
                continue
            case .wait(let reason, let detail):
                waiting[reason, default: 0] += 1
                if seenFor("waiting-logged:\(job.uid ?? job.name)", in: &cycle) == .zero {
                    logger.notice(
                        "reaper: runner job waits; kept",
                        metadata: ["runner_job": "\(job.name)", "reason": "\(reason)", "detail": "\(detail)"]
                    )
                }
            case .reap(let reason, let detail):
                guard try await remove(job, reason: reason, detail: detail, in: world) else { continue }
                cycle.removed.insert(job.name)
                // A warm runner has no job: its pool is held off in that repository instead.
                if let id = job.labels[RunnerJob.jobIDLabel] ?? Self.warmHoldOffKey(of: job) {
                    let until = clock.now + configuration.failureHoldOff
                    state.withLock { $0.heldOff[id] = (until, reason) }
                }
            }
        }
        metrics.setJobsWaiting(reason: "quota", Int64(waiting["quota", default: 0]))
        metrics.setJobsWaiting(reason: "refused", Int64(waiting["refused", default: 0]))
    }

    /// Interrupted provisionings: a Job still without its Secret `secretDeadline` after it was first seen.
    func reapInterruptedProvisionings(in world: World, _ cycle: inout Cycle) async throws(LostLeadership) {
        for job in world.jobs where !job.isFinished && !world.secretNames.contains(job.name) {
            guard !cycle.removed.contains(job.name),
                seenFor("no-secret:\(job.uid ?? job.name)", in: &cycle) >= configuration.secretDeadline
            else { continue }
            let detail = "its provisioning was interrupted (no JIT secret)"
            if try await remove(job, reason: "no_secret", detail: detail, in: world) {
                cycle.removed.insert(job.name)
            }
        }
    }

    /// Registrations of ours recorded on no Job: leftovers of a failed-but-effective JIT call, of an interrupted
    /// provisioning, or of a Job that is gone.
    func reapUnrecordedRegistrations(in world: World, _ cycle: inout Cycle) async throws(LostLeadership) {
        let recordedIDs = Set(world.records.values.map(\.id))
        let liveJobNames = Set(
            world.jobs.filter { !$0.isFinished && !cycle.removed.contains($0.name) }.map(\.name)
        )
        for (repository, runners) in world.registrations.sorted(by: { $0.key.description < $1.key.description }) {
            for runner in runners where isOurs(runner) && !recordedIDs.contains(runner.id) && runner.busy != true {
                guard let name = RunnerName(parsing: runner.name, as: .registration),
                    seenFor("unrecorded:\(runner.id)", of: repository, in: &cycle) >= configuration.secretDeadline
                else { continue }
                let reason = liveJobNames.contains(name.jobName) ? "leftover_registration" : "orphan_registration"
                _ = try await removeRegistration(runner, in: repository, reason: reason)
            }
        }
    }

    /// Runners that exited without taking a job (their Job finished, or their runner container ended, and the
    /// registration is still there), and registrations still offline `connectDeadline` after their runner
    /// container was first seen running.
    func reapExitedRunners(in world: World, _ cycle: inout Cycle) async throws(LostLeadership) {
        for job in world.jobs where !cycle.removed.contains(job.name) {
            guard let record = world.records[job.name], let (repository, runner) = world.registration(id: record.id),
                runner.busy != true, isOurs(runner)
            else { continue }
            let pods = world.pods?.filter { $0.jobName == job.name } ?? []
            let exited = job.isFinished || pods.contains { $0.runnerContainer?.isTerminated == true }
            // Offline while its runner container runs, for the connect deadline: the clock starts when it is first
            // seen so and starts over whenever it is seen online (a runner that connected and dropped for a moment
            // is not one that never connected).
            let running = pods.contains { $0.runnerContainer?.isRunning == true }
            let offlineKey = "offline:\(runner.id)"
            if runner.status == "online" || !running {
                state.withLock { _ = $0.firstSeen.removeValue(forKey: offlineKey) }
            }
            let offlineLong =
                running && runner.status != "online"
                && seenFor(offlineKey, of: repository, in: &cycle) >= configuration.connectDeadline
            let reason: String
            if exited {
                reason = "runner_exited"
            } else if offlineLong {
                reason = "never_connected"
            } else {
                continue
            }
            let removal = try await removeRegistration(
                runner,
                in: repository,
                reason: reason,
                onlyIfOffline: reason == "never_connected"
            )
            guard removal == .deleted, !job.isFinished else { continue }
            try fence()
            if await deleteJob(job, reason: reason, detail: "its runner \(runner.name) never took a job", count: false)
            {
                cycle.removed.insert(job.name)
            }
        }
    }

    /// Idle runners no queued job needs, after `idleTimeout`; none in a repository where some demand may not have
    /// been seen (a list cut at its limit), nor where the registrations could not be listed.
    func reapIdleRunners(
        in world: World,
        plans: [RepositoryRegistry.Repository: Plan],
        _ cycle: inout Cycle
    ) async throws(LostLeadership) {
        let warm = warmKept(in: world, cycle: cycle)
        for repository in world.repositories {
            guard let plan = plans[repository], let runners = world.registrations[repository],
                !world.demandCut.contains(repository)
            else { continue }
            for runner in runners where isOurs(runner) && !warm.contains(runner.id) {
                guard runner.busy != true, let job = plan.recordedOn[runner.id] else { continue }
                let idle = seenFor("idle:\(runner.id)", of: repository, in: &cycle)
                guard !plan.needed.contains(runner.id), idle >= configuration.idleTimeout else { continue }
                let outcome = try await removeRegistration(runner, in: repository, reason: "idle")
                // The idle rule removes a Job only when the registration recorded on it is the one it deleted.
                guard outcome == .deleted, world.records[job.name]?.id == runner.id else { continue }
                try fence()
                _ = await deleteJob(
                    job,
                    reason: "idle",
                    detail: "idle \(idle.components.seconds) s; no queued job needs it",
                    count: false
                )
            }
        }
    }

    /// `kubernetes` mode: a pod the container hooks started for a job's container outlives its runner when the
    /// runner ends before the hooks' own cleanup (killed, evicted, timed out), and it idles on, holding its work
    /// volume, until someone removes it. Removed when it carries this deployment's marker, names a runner Job of
    /// this deployment and that Job's pod as its runner (`runner-pod` is `<runner Job>-…`), no Job owns it, that
    /// runner has not been seen running for `secretDeadline`, and a fresh list of the runner Job's pods, just
    /// before the deletion, shows the runner not running.
    func reapOrphanedHookPods(in world: World, _ cycle: inout Cycle) async throws(LostLeadership) {
        guard let hookPods = world.hookPods, let runnerPods = world.pods else { return }
        for pod in hookPods where pod.jobName == nil && pod.labels[RunnerJob.instanceLabel] == ownerLabel {
            guard let runnerJob = pod.labels[RunnerJob.hookRunnerJobLabel],
                RunnerName(parsing: runnerJob, as: .job) != nil,
                let runnerPod = pod.labels[RunnerJob.hookRunnerPodLabel], runnerPod.hasPrefix(runnerJob + "-")
            else { continue }
            let key = "hook-orphan:\(pod.uid ?? pod.name)"
            if Self.runnerIsRunning(runnerPod, in: runnerPods) {
                state.withLock { _ = $0.firstSeen.removeValue(forKey: key) }
                continue
            }
            guard seenFor(key, in: &cycle) >= configuration.secretDeadline else { continue }
            let metadata: Logger.Metadata = ["pod": "\(pod.name)", "runner_job": "\(runnerJob)"]
            let selector = RunnerJob.selector(ownerLabel: ownerLabel) + ",batch.kubernetes.io/job-name=\(runnerJob)"
            guard let fresh = try? await kubernetes.listPods(namespace: namespace, labelSelector: selector) else {
                logger.warning("reaper: cannot look at a hook pod's runner; kept", metadata: metadata)
                continue
            }
            guard !Self.runnerIsRunning(runnerPod, in: fresh) else { continue }
            try fence()
            do {
                try await kubernetes.deletePod(name: pod.name, namespace: namespace, uid: pod.uid)
                metrics.countReaped("orphaned_hook_pod")
                logger.warning("reaper: removed a hook pod whose runner is gone", metadata: metadata)
            } catch  where error.kind == .notFound {
                continue
            } catch {
                logger.warning(
                    "reaper: removing a hook pod failed",
                    metadata: metadata.merging(["error": "\(error)"]) { $1 }
                )
            }
        }
    }

    /// Whether the runner pod of that name is among `pods` and its runner container has not ended.
    static func runnerIsRunning(_ name: String, in pods: [PodSummary]) -> Bool {
        pods.contains { $0.name == name && $0.runnerContainer?.isTerminated != true }
    }

    /// A custom backend's objects have no TTL and no pod the reapers read, so their registration tells: an object
    /// whose recorded registration is gone from its visited repository's list, when a fresh look confirms it gone,
    /// served its job (an ephemeral runner's registration goes when its job is done) and is removed (`finished`).
    /// One whose registration stays offline `connectDeadline` after the object was first seen never connected: the
    /// registration goes first, then the object (`never_connected`).
    func reapFinishedCustomRunners(in world: World, _ cycle: inout Cycle) async throws(LostLeadership) {
        for job in world.jobs where job.resource != nil && !cycle.removed.contains(job.name) {
            guard let record = world.records[job.name],
                let repository = repository(of: job, registrationID: record.id, in: world),
                let listed = world.registrations[repository], !world.truncated.contains(repository)
            else { continue }
            if let runner = listed.first(where: { $0.id == record.id }) {
                let key = "custom-offline:\(runner.id)"
                if runner.status == "online" || runner.busy == true {
                    state.withLock { _ = $0.firstSeen.removeValue(forKey: key) }
                    continue
                }
                guard isOurs(runner), seenFor(key, of: repository, in: &cycle) >= configuration.connectDeadline else {
                    continue
                }
                let removal = try await removeRegistration(
                    runner,
                    in: repository,
                    reason: "never_connected",
                    onlyIfOffline: true
                )
                guard removal == .deleted || removal == .gone else { continue }
                try fence()
                if await deleteJob(job, reason: "never_connected", detail: "its runner never connected", count: false) {
                    cycle.removed.insert(job.name)
                }
                continue
            }
            guard
                seenFor("custom-done:\(job.uid ?? job.name)", of: repository, in: &cycle)
                    >= configuration.secretDeadline
            else { continue }
            // Gone from the list: a fresh look must agree before the object goes.
            guard try spend(PointsBudget.read) else { continue }
            let fresh: RegisteredRunner?
            do {
                fresh = try await github.runner(
                    owner: repository.owner,
                    repo: repository.name,
                    scope: scope,
                    id: record.id
                )
            } catch {
                continue
            }
            guard fresh == nil else { continue }
            try fence()
            let detail = "its runner's registration is gone: its job is done"
            if await deleteJob(job, reason: "finished", detail: detail, count: false, level: .info) {
                cycle.removed.insert(job.name)
            }
        }
    }
}
