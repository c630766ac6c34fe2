import GitHub
import Kubernetes
import Support

/// A cycle's first half: everything it needs is listed before anything is changed. GitHub first, one repository at
/// a time within the points budget (its queued jobs, and its registrations where they can matter), then Kubernetes
/// (Jobs, Secrets, pods, events).
extension Reconciler {
    /// Everything one cycle saw, listed before anything is changed.
    struct World {
        /// Every known repository (a runner Job's repository is looked up here).
        var known: [RepositoryRegistry.Repository] = []
        /// The repositories this cycle visited, in the order it visited them; the rules that need a repository's
        /// registrations or queued jobs act on these only.
        var repositories: [RepositoryRegistry.Repository] = []
        /// Per repository whose list answered: its registrations (in organization scope, the organization's
        /// registrations made for that repository's jobs).
        var registrations: [RepositoryRegistry.Repository: [RegisteredRunner]] = [:]
        var jobs: [JobSummary] = []
        /// Job name → the registration recorded on its Secret (the Secret owned by that very Job).
        var records: [String: (id: Int64, name: String)] = [:]
        var secretNames: Set<String> = []
        var pods: [PodSummary]? = nil
        /// `kubernetes` mode: the pods the container hooks created for this deployment's runners.
        var hookPods: [PodSummary]? = nil
        var events: [JobEvent]? = nil
        /// Per repository whose jobs were listed: queued jobs, and jobs in progress (with their runner's name).
        var queued: [RepositoryRegistry.Repository: [GitHubJob]] = [:]
        var running: [RepositoryRegistry.Repository: [GitHubJob]] = [:]

        /// Repositories whose list reached `GitHubListing.limit`: more registrations may exist than were seen.
        var truncated: Set<RepositoryRegistry.Repository> = []
        /// Repositories whose runs or a run's jobs reached `GitHubListing.limit`: queued jobs may exist that were not
        /// seen, so no runner there is known to be surplus.
        var demandCut: Set<RepositoryRegistry.Repository> = []
        /// Shutdown came while observing: nothing is to be done with what was seen.
        var stopping = false

        /// A registration of this deployment by id, with its repository.
        func registration(id: Int64) -> (RepositoryRegistry.Repository, RegisteredRunner)? {
            for (repository, runners) in registrations {
                if let runner = runners.first(where: { $0.id == id }) { return (repository, runner) }
            }
            return nil
        }
    }

    /// Why a cycle's visits stopped before every repository.
    enum Stop: Equatable {
        /// The minute's points are spent; the next cycle goes on from here.
        case budget
        /// GitHub's hourly rate limit fell under the reserve kept for deliveries.
        case reserve(Int64)
        /// GitHub answered with a rate limit.
        case rateLimited
        /// Shutdown or cancellation.
        case stopping
    }

    /// Visits repositories in `visitingOrder` within the budget, then lists Jobs, Secrets, pods and events.
    func observe(summary: inout Summary) async throws(KubernetesAPIError) -> World {
        var world = World()
        // A warm pool's repositories are visited even before a job of theirs made them known.
        world.known = Set(await repositories.all()).union(warmPools.flatMap(\.repositories)).sorted()
        var owners: [String: [RegisteredRunner]?] = [:]
        var priorityPoints = 0
        // Where the round robin got to, and what no longer needs priority: kept only once the cycle can act.
        var cursor: RepositoryRegistry.Repository?
        var done: [RepositoryRegistry.Repository] = []
        let fresh = budget.spentThisMinute == 0
        let began = clock.now
        let (priority, rest) = visitingOrder(world.known)
        visits: for (index, repository) in (priority + rest).enumerated() {
            let isPriority = index < priority.count
            // Priority visits take at most half of what observing may spend, so the round robin always moves on.
            if isPriority && priorityPoints > configuration.observingPoints / 2 { continue }
            // Listing goes on while points free; after a whole interval the cycle acts on what it saw (a job found
            // early does not wait for the round robin), and the next goes on from here.
            if !world.repositories.isEmpty && clock.now - began >= configuration.interval {
                logger.info("reconciler: listed for a whole interval; acting, the next cycle goes on from here")
                summary.result = "partial"
                break visits
            }
            if let stop = stopReason() {
                note(stop, summary: &summary)
                break visits
            }
            let before = budget.spentThisMinute
            switch await visit(repository, priority: isPriority, into: &world, owners: &owners) {
            case .visited:
                summary.repositories += 1
                world.repositories.append(repository)
                done.append(repository)
                if isPriority {
                    priorityPoints += budget.spentThisMinute - before
                } else {
                    cursor = repository
                }
            case .failed:
                summary.result = "partial"
                if !isPriority { cursor = repository }
            case .stopped(.budget) where fresh && world.repositories.isEmpty:
                // Its lists alone cost more than a minute's listing may spend: passed over, or it would stop
                // every cycle at itself and no repository after it would ever be visited.
                logger.warning(
                    "reconciler: a repository's lists cost more than a cycle may spend; passed over",
                    metadata: ["repo": "\(repository)", "points_per_minute": "\(configuration.pointsPerMinute)"]
                )
                summary.result = "partial"
                done.append(repository)
                if !isPriority { cursor = repository }
                break visits
            case .stopped(let stop):
                note(stop, summary: &summary)
                break visits
            }
        }
        if let stop = stopReason(), stop == .stopping {
            world.stopping = true
            return world
        }
        try await observeKubernetes(into: &world)
        if scope == .organization { assignOrganizationRunners(owners, in: &world) }
        for repository in done { repositories.visited(repository) }
        if let cursor { state.withLock { $0.cursor = cursor } }
        return world
    }

    /// Repositories flagged for priority (a sign of loss, a recent delivery) first, then every known repository
    /// round robin from the one after the last visited (the cursor), so a cycle cut short is continued by the next.
    func visitingOrder(
        _ known: [RepositoryRegistry.Repository]
    ) -> (priority: [RepositoryRegistry.Repository], rest: [RepositoryRegistry.Repository]) {
        let knownSet = Set(known)
        let priority = repositories.priority().filter { knownSet.contains($0) }
        let prioritySet = Set(priority)
        let cursor = state.withLock { $0.cursor }
        let start = cursor.flatMap { cursor in known.firstIndex { $0 > cursor } } ?? 0
        let rotated = known[start...] + known[..<start]
        return (priority, rotated.filter { !prioritySet.contains($0) })
    }

    /// Why the cycle must not make its next listing call (a GET), if it must not.
    func stopReason() -> Stop? {
        if Task.isCancelled || Task.isShuttingDownGracefully { return .stopping }
        if let remaining = rateLimitRemaining(), remaining < configuration.reserve { return .reserve(remaining) }
        if budget.spentThisMinute + PointsBudget.read > configuration.observingPoints { return .budget }
        return nil
    }

    private func note(_ stop: Stop, summary: inout Summary) {
        summary.result = "partial"
        switch stop {
        case .reserve(let remaining):
            logger.warning(
                "reconciler: GitHub rate limit under the reserve; cycle stopped",
                metadata: ["remaining": "\(remaining)", "reserve": "\(configuration.reserve)"]
            )
            metrics.countReserveHit()
        case .budget:
            logger.info(
                "reconciler: the minute's GitHub points are spent; the next cycle goes on from here",
                metadata: ["points_per_minute": "\(configuration.pointsPerMinute)"]
            )
        case .rateLimited, .stopping:
            break
        }
    }

    enum Visit { case visited, failed, stopped(Stop) }

    /// One repository: its registrations (in organization scope, its organization's, listed once per cycle), then
    /// its queued jobs. A repository left midway (the budget, a rate limit, shutdown) counts as not visited.
    ///
    /// A repository's registrations are listed only where they can matter (`needsRegistrations`), else after its
    /// jobs when those show a matching queued job or one of its runners at work: most of a thousand repositories
    /// have neither, and their runs alone cost two points a visit instead of three.
    func visit(
        _ repository: RepositoryRegistry.Repository,
        priority: Bool = false,
        into world: inout World,
        owners: inout [String: [RegisteredRunner]?]
    ) async -> Visit {
        switch scope {
        case .organization where owners[repository.owner] == nil:
            if let stop = stopReason() { return .stopped(stop) }
            owners[repository.owner] = .some(await listRegistrations(of: repository, into: &world))
        case .organization:
            break
        case .repository:
            if priority || needsRegistrations(repository) {
                if let stop = stopReason() { return .stopped(stop) }
                world.registrations[repository] = await listRegistrations(of: repository, into: &world)
            }
        }
        do {
            let (queued, running, complete) = try await jobs(in: repository)
            world.queued[repository] = queued
            world.running[repository] = running
            if !complete { world.demandCut.insert(repository) }
            let ours = running.contains { $0.runnerName.flatMap { RunnerName(parsing: $0, as: .registration) } != nil }
            if scope == .repository, world.registrations[repository] == nil,
                ours || queued.contains(where: { matcher.matches($0.labels) })
            {
                if let stop = stopReason() { throw StopVisit(stop: stop) }
                world.registrations[repository] = await listRegistrations(of: repository, into: &world)
            }
            return .visited
        } catch let error as GitHubAPIError {
            logger.warning(
                "reconciler: listing queued jobs failed",
                metadata: ["repo": "\(repository)", "error": "\(error)"]
            )
            world.registrations[repository] = nil
            world.truncated.remove(repository)
            return error.kind == .rateLimited ? .stopped(.rateLimited) : .failed
        } catch {
            world.registrations[repository] = nil
            world.truncated.remove(repository)
            return .stopped((error as? StopVisit)?.stop ?? .stopping)
        }
    }

    /// Thrown between a repository's calls when the next one must not be made.
    struct StopVisit: Error { var stop: Stop }

    /// A repository's registrations (in organization scope, its organization's); nil when the list failed.
    private func listRegistrations(
        of repository: RepositoryRegistry.Repository,
        into world: inout World
    ) async -> [RegisteredRunner]? {
        budget.charge(PointsBudget.read)
        let runners = try? await github.runners(owner: repository.owner, repo: repository.name, scope: scope)
        if let runners {
            budget.charge(Self.furtherPages(runners.count))
            if runners.count >= GitHubListing.limit { world.truncated.insert(repository) }
            state.withLock { $0.registrationsListed[repository] = clock.now }
        }
        return runners
    }

    /// Whether a visit lists the repository's registrations before its jobs: before the first list of runner Jobs
    /// (nothing is known yet), when a runner Job of this deployment serves it, or when they were last listed
    /// `registrationsRefresh` ago (counted from when the repository was first visited), so a registration no Job
    /// records is still found there.
    func needsRegistrations(_ repository: RepositoryRegistry.Repository) -> Bool {
        let now = clock.now
        let refresh = configuration.registrationsRefresh
        return state.withLock { state -> Bool in
            guard let served = state.servedRepositories else { return true }
            if served.contains(Self.servedKey(owner: repository.owner, repo: repository.name)) { return true }
            guard let listed = state.registrationsListed[repository] else {
                state.registrationsListed[repository] = now
                return false
            }
            let since: Duration = now - listed
            return since >= refresh
        }
    }

    /// A repository as the labels of its runner Jobs name it.
    static func servedKey(owner: String, repo: String) -> String {
        RunnerJob.labelValue(owner) + "/" + RunnerJob.labelValue(repo)
    }

    /// Pages after the first of a list of `count` items (100 a page): each a GET, known only once read.
    static func furtherPages(_ count: Int) -> Int { max(0, (count - 1) / 100) }

    /// Queued jobs of queued runs and of in-progress runs (a multi-job run whose first jobs already started), and
    /// the jobs in progress (which runner took which job), each call within the budget.
    /// `complete` is false when a list reached `GitHubListing.limit`: more runs or jobs may wait than were seen.
    func jobs(
        in repository: RepositoryRegistry.Repository
    ) async throws -> (queued: [GitHubJob], running: [GitHubJob], complete: Bool) {
        var queued: [GitHubJob] = []
        var running: [GitHubJob] = []
        var complete = true
        for status in ["queued", "in_progress"] {
            if let stop = stopReason() { throw StopVisit(stop: stop) }
            budget.charge(PointsBudget.read)
            let runs = try await github.runs(owner: repository.owner, repo: repository.name, status: status)
            budget.charge(Self.furtherPages(runs.count))
            if runs.count >= GitHubListing.limit { complete = false }
            for run in runs {
                if let stop = stopReason() { throw StopVisit(stop: stop) }
                budget.charge(PointsBudget.read)
                let jobs = try await github.jobs(owner: repository.owner, repo: repository.name, runID: run.id)
                budget.charge(Self.furtherPages(jobs.count))
                if jobs.count >= GitHubListing.limit { complete = false }
                for job in jobs {
                    if job.status == "queued" { queued.append(job) }
                    if job.status == "in_progress" { running.append(job) }
                }
            }
        }
        return (queued, running, complete)
    }

    /// Runner Jobs, their Secrets (the registration recorded on each), pods and `FailedCreate` events.
    func observeKubernetes(into world: inout World) async throws(KubernetesAPIError) {
        let selector = RunnerJob.selector(ownerLabel: ownerLabel)
        world.jobs = try await kubernetes.listJobs(namespace: namespace, labelSelector: selector, limit: nil)
        // A custom backend's objects stand for Jobs; whether one is over is told by its registration
        // (`reapFinishedCustomRunners`).
        for resource in customResources {
            let objects: [ObjectSummary]
            do {
                objects = try await kubernetes.listObjects(
                    resource: resource,
                    namespace: namespace,
                    labelSelector: selector
                )
            } catch  where error.kind == .notFound {
                // The API server does not serve the resource (its CRD is not installed, or a profile misspells its
                // plural): no object of it exists. Any other failure fails the cycle, as objects may exist unseen.
                logger.warning(
                    "reconciler: a custom backend's resource is not served; it has no objects",
                    metadata: ["resource": "\(resource)", "error": "\(error)"]
                )
                continue
            }
            world.jobs += objects.map {
                JobSummary(
                    name: $0.name,
                    labels: $0.labels,
                    isFinished: false,
                    createdAt: $0.createdAt,
                    uid: $0.uid,
                    resource: resource
                )
            }
        }
        let served = Set(
            world.jobs.compactMap { job -> String? in
                guard let owner = job.labels[RunnerJob.ownerNameLabel],
                    let repo = job.labels[RunnerJob.repositoryNameLabel]
                else { return nil }
                return owner + "/" + repo
            }
        )
        state.withLock { $0.servedRepositories = served }
        let secrets = try await kubernetes.listSecrets(namespace: namespace, labelSelector: selector)
        let uids = Dictionary(world.jobs.map { ($0.name, $0.uid) }, uniquingKeysWith: { first, _ in first })
        for secret in secrets {
            world.secretNames.insert(secret.name)
            // The record counts only on the Secret owned by that very Job.
            guard let jobUID = uids[secret.name], secret.ownerUID == nil || secret.ownerUID == jobUID,
                let id = secret.labels[RunnerJob.runnerIDLabel].flatMap({ Int64($0) }),
                let name = secret.labels[RunnerJob.runnerNameLabel]
            else { continue }
            world.records[secret.name] = (id, name)
        }
        world.pods = try? await kubernetes.listPods(namespace: namespace, labelSelector: selector)
        if let pods = world.pods {
            // A metadata-only Job list tells only which Jobs succeeded. A runner Job has one try (backoffLimit 0), so
            // one whose every pod's runner container has ended is over, failed or not.
            let podsByJob = Dictionary(grouping: pods.filter { $0.jobName != nil }) { $0.jobName! }
            for index in world.jobs.indices where !world.jobs[index].isFinished {
                guard let own = podsByJob[world.jobs[index].name], !own.isEmpty else { continue }
                if own.allSatisfy({ $0.runnerContainer?.isTerminated == true }) { world.jobs[index].isFinished = true }
            }
        }
        world.events = try? await kubernetes.listFailedCreateEvents(namespace: namespace)
        if configuration.reapsHookPods || matcher.usesContainerHooks {
            world.hookPods = try? await kubernetes.listPods(
                namespace: namespace,
                labelSelector: RunnerJob.hookPodSelector(ownerLabel: ownerLabel)
            )
        }
    }

    /// Organization scope: each organization's registrations go to the visited repository whose job they were
    /// made for (the runner Job its name names, by that Job's labels), and wait for that repository's visit when
    /// it was not visited; one without a runner Job goes to the organization's first visited repository, so that
    /// it is still seen, and removed at the organization.
    func assignOrganizationRunners(_ owners: [String: [RegisteredRunner]?], in world: inout World) {
        let jobs = Dictionary(world.jobs.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for (owner, runners) in owners {
            let visited = world.repositories.filter { $0.owner == owner }
            guard let first = visited.first else { continue }
            guard let runners else { continue }  // the list failed: supply unknown in every repository of it
            for repository in visited { world.registrations[repository] = [] }
            for runner in runners {
                let job = RunnerName(parsing: runner.name, as: .registration).flatMap { jobs[$0.jobName] }
                let named = job.flatMap { job in
                    visited.first {
                        RunnerJob.labelValue($0.name) == job.labels[RunnerJob.repositoryNameLabel]
                            && RunnerJob.labelValue($0.owner) == job.labels[RunnerJob.ownerNameLabel]
                    }
                }
                // A runner of a repository not visited this cycle waits for that visit: in another repository's
                // plan it would look surplus while its own job may wait.
                if job != nil && named == nil { continue }
                world.registrations[named ?? first, default: []].append(runner)
            }
            if runners.count >= GitHubListing.limit { world.truncated.formUnion(visited) }
        }
    }
}
