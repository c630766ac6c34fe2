import GitHub
import Kubernetes

/// A cycle's first half: everything it needs is listed before anything is changed.
extension Reconciler {
    /// Everything one cycle saw, listed before anything is changed.
    struct World {
        var repositories: [RepositoryRegistry.Repository] = []
        /// Per repository whose list answered: its registrations.
        var registrations: [RepositoryRegistry.Repository: [RegisteredRunner]] = [:]
        var jobs: [JobSummary] = []
        /// Job name → the registration recorded on its Secret (the Secret owned by that very Job).
        var records: [String: (id: Int64, name: String)] = [:]
        var secretNames: Set<String> = []
        var pods: [PodSummary]? = nil
        var events: [JobEvent]? = nil
        /// Per repository whose jobs were listed: queued jobs, and jobs in progress (with their runner's name).
        var queued: [RepositoryRegistry.Repository: [GitHubJob]] = [:]
        var running: [RepositoryRegistry.Repository: [GitHubJob]] = [:]

        /// Repositories whose list reached `GitHubListing.limit`: more registrations may exist than were seen.
        var truncated: Set<RepositoryRegistry.Repository> = []
        /// Repositories whose runs or a run's jobs reached `GitHubListing.limit`: queued jobs may exist that were not seen, so
        /// no runner there is known to be surplus.
        var demandCut: Set<RepositoryRegistry.Repository> = []

        /// Every known repository's registrations were listed in full: a registration found in none is gone.
        var listedEveryRepository: Bool { registrations.count == repositories.count && truncated.isEmpty }

        /// A registration of this deployment by id, with its repository.
        func registration(id: Int64) -> (RepositoryRegistry.Repository, RegisteredRunner)? {
            for (repository, runners) in registrations {
                if let runner = runners.first(where: { $0.id == id }) { return (repository, runner) }
            }
            return nil
        }
    }

    /// Lists registrations first, then Jobs, Secrets, pods and events, then the queued jobs.
    func observe(summary: inout Summary) async throws(KubernetesAPIError) -> World {
        var world = World()
        world.repositories = await repositories.all()
        for repository in world.repositories {
            if let remaining = rateLimitRemaining(), remaining < configuration.reserve { break }
            if let runners = try? await github.runners(owner: repository.owner, repo: repository.name) {
                world.registrations[repository] = runners
                if runners.count >= GitHubListing.limit { world.truncated.insert(repository) }
            }
        }
        let selector = RunnerJob.selector(ownerLabel: ownerLabel)
        world.jobs = try await kubernetes.listJobs(namespace: namespace, labelSelector: selector, limit: nil)
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

        for repository in world.repositories {
            summary.repositories += 1
            if let remaining = rateLimitRemaining(), remaining < configuration.reserve {
                logger.warning(
                    "reconciler: GitHub rate limit under the reserve; cycle stopped",
                    metadata: ["remaining": "\(remaining)", "reserve": "\(configuration.reserve)"]
                )
                metrics.countReserveHit()
                summary.result = "partial"
                break
            }
            do {
                let (queued, running, complete) = try await jobs(in: repository)
                world.queued[repository] = queued
                world.running[repository] = running
                if !complete { world.demandCut.insert(repository) }
            } catch {
                logger.warning(
                    "reconciler: listing queued jobs failed",
                    metadata: ["repo": "\(repository)", "error": "\(error)"]
                )
                summary.result = "partial"
                if error.kind == .rateLimited { break }
            }
        }
        return world
    }

    /// Queued jobs of queued runs and of in-progress runs (a multi-job run whose first jobs already started), and
    /// the jobs in progress (which runner took which job).
    /// `complete` is false when a list reached `GitHubListing.limit`: more runs or jobs may wait than were seen.
    func jobs(
        in repository: RepositoryRegistry.Repository
    ) async throws(GitHubAPIError) -> (queued: [GitHubJob], running: [GitHubJob], complete: Bool) {
        var queued: [GitHubJob] = []
        var running: [GitHubJob] = []
        var complete = true
        for status in ["queued", "in_progress"] {
            let runs = try await github.runs(owner: repository.owner, repo: repository.name, status: status)
            if runs.count >= GitHubListing.limit { complete = false }
            for run in runs {
                let jobs = try await github.jobs(owner: repository.owner, repo: repository.name, runID: run.id)
                if jobs.count >= GitHubListing.limit { complete = false }
                for job in jobs {
                    if job.status == "queued" { queued.append(job) }
                    if job.status == "in_progress" { running.append(job) }
                }
            }
        }
        return (queued, running, complete)
    }
}
