import GitHub
import Kubernetes

/// Supply and demand per repository: which idle runner serves which queued job, what is surplus, what is unserved.
extension Reconciler {
    /// What one repository's queued jobs need.
    struct Plan {
        struct Need {
            var job: GitHubJob
            /// Nil: the job has no runner Job at all. Else the name of the runner Job to make: a replacement for a
            /// runner that took another job, or the next attempt after Jobs that finished without taking it.
            var request: RunnerName?
            /// Its runner took another job, but which one is not known (not in the runs listed): wait.
            var takerUnknown = false
        }
        /// Registrations some queued job needs (its own, or a spare that fits it): not idle surplus.
        var needed: Set<Int64> = []
        var unserved: [Need] = []
        /// Registration id → the live runner Job recording it.
        var recordedOn: [Int64: JobSummary] = [:]
    }

    /// Runners are fungible: GitHub gives a queued job any idle runner of its repository whose labels fit. Each queued
    /// job first keeps its own idle runner (or a runner Job still being provisioned); then the others take spare
    /// idle runners that fit them, one each; what is left over is surplus, and the jobs left without are unserved.
    static func plan(
        queued: [GitHubJob],
        running: [GitHubJob],
        runners: [RegisteredRunner],
        jobs: [JobSummary],
        records: [String: (id: Int64, name: String)],
        isOurs: (RegisteredRunner) -> Bool,
        isYoung: (String) -> Bool
    ) -> Plan {
        var plan = Plan()
        let byID = Dictionary(runners.filter(isOurs).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for job in jobs where !job.isFinished {
            if let record = records[job.name] { plan.recordedOn[record.id] = job }
        }
        // Idle runners that can take a job: recorded on a live Job of ours, not busy.
        let idle = Set(plan.recordedOn.keys.filter { byID[$0].map { $0.busy != true } ?? false })
        var waiting: [GitHubJob] = []
        for job in queued.sorted(by: { $0.id < $1.id }) {
            let own = jobs.filter { $0.labels[RunnerJob.jobIDLabel] == String(job.id) }
            let live = own.filter { !$0.isFinished }
            if let mine = live.compactMap({ records[$0.name]?.id }).first(where: { idle.contains($0) }) {
                plan.needed.insert(mine)
                continue
            }
            // Still being provisioned: no registration recorded yet, or recorded but not listed yet.
            let pending = live.contains { job in
                guard let record = records[job.name] else { return true }
                return byID[record.id] == nil && isYoung(job.uid ?? job.name)
            }
            if !pending { waiting.append(job) }
        }
        var unserved: [GitHubJob] = []
        for job in waiting {
            let wanted = Set(job.labels.map { $0.lowercased() })
            let spare = idle.sorted().first { id in
                !plan.needed.contains(id) && wanted.isSubset(of: Set(byID[id]!.labels.map { $0.lowercased() }))
            }
            if let spare {
                plan.needed.insert(spare)
            } else {
                unserved.append(job)
            }
        }
        for job in unserved {
            let own = jobs.filter { $0.labels[RunnerJob.jobIDLabel] == String(job.id) }
            guard !own.isEmpty else {
                plan.unserved.append(Plan.Need(job: job, request: nil))
                continue
            }
            // A live Job whose runner is busy: it took another job; the replacement is named after that job, as the
            // in_progress delivery names it (so the two paths make one runner, never two).
            let names = Set(own.map(\.name))
            let busy = own.filter { !$0.isFinished }.compactMap { records[$0.name] }.filter {
                byID[$0.id]?.busy == true
            }
            if !busy.isEmpty {
                let replacements = busy.map { record in
                    running.first { $0.runnerName == record.name }.map { RunnerName(jobID: job.id, after: $0.id) }
                }
                if let next = replacements.compactMap({ $0 }).first(where: { !names.contains($0.jobName) }) {
                    plan.unserved.append(Plan.Need(job: job, request: next))
                    continue
                } else if replacements.contains(where: { $0 == nil }) {
                    plan.unserved.append(Plan.Need(job: job, request: RunnerName(jobID: job.id), takerUnknown: true))
                    continue
                }
                // That replacement was made already and finished without taking the job: the next attempt.
            }
            // Its Jobs finished (or lost their registration) without taking it: the next attempt, under a name no Job
            // of it has.
            let parsed = own.compactMap { RunnerName(parsing: $0.name, as: .job) }
            let latest = parsed.max { $0.attempt < $1.attempt } ?? RunnerName(jobID: job.id)
            var next = RunnerName(jobID: job.id, after: latest.after, attempt: latest.attempt + 1)
            while names.contains(next.jobName) { next.attempt += 1 }
            plan.unserved.append(Plan.Need(job: job, request: next))
        }
        return plan
    }
}
