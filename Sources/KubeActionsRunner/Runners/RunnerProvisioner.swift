/// A queued job that needs a runner, as taken from a verified delivery (or, later, the reconciler).
public struct RunnerRequest: Sendable, Equatable {
    public var owner: String
    public var repository: String
    public var jobID: Int64
    public var runID: Int64
    public var jobName: String
    public var labels: [String]
    /// The delivery that asked for it, for logs; nil when not from a webhook.
    public var deliveryID: String?

    public init(
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
    public var replacing: Int64? = nil

    /// The Kubernetes Job's name: deterministic, so a second delivery for the same job finds the first Job.
    /// A replacement is `runner-<job id>-after-<job its first runner took>`, as deterministic.
    public var runnerJobName: String {
        replacing.map { "runner-\(jobID)-after-\($0)" } ?? "runner-\(jobID)"
    }

    /// The job id in a runner (registration) name this service gives: `runner-<id>-<5 characters>`, or
    /// `runner-<id>-after-<other id>-<5 characters>` for a replacement; nil for any other name.
    public static func jobID(ofRunnerNamed name: String) -> Int64? {
        let parts = name.split(separator: "-", omittingEmptySubsequences: false)
        func isSuffix(_ part: Substring) -> Bool {
            part.count == 5 && part.allSatisfy { ($0.isLowercase && $0.isASCII) || $0.isNumber }
        }
        func isNumber(_ part: Substring) -> Bool { !part.isEmpty && part.allSatisfy { $0.isASCII && $0.isNumber } }
        guard parts.first == "runner", parts.count >= 3, isNumber(parts[1]) else { return nil }
        switch parts.count {
        case 3 where isSuffix(parts[2]): return Int64(parts[1])
        case 5 where parts[2] == "after" && isNumber(parts[3]) && isSuffix(parts[4]): return Int64(parts[1])
        default: return nil
        }
    }
}

/// What provisioning did.
public enum ProvisionOutcome: Sendable, Equatable {
    /// A runner Job was created.
    case created(runnerJob: String)
    /// A runner Job for this job already existed; nothing new was registered.
    case alreadyProvisioned(runnerJob: String)
    /// GitHub says the job is no longer queued (taken, cancelled or done).
    case notQueued(status: String)
}

/// Readiness of a dependency, with a one-line reason when not ready.
public enum Readiness: Sendable, Equatable {
    case ready
    case notReady(String)
}

/// Provisioning failed; the webhook answers `status` (502 or 503) with `reason`.
public struct ProvisioningError: Error, Equatable, CustomStringConvertible {
    public var status: Int
    /// Short and safe to send to GitHub's delivery log: no secrets, no upstream bodies.
    public var reason: String

    public init(status: Int, reason: String) {
        self.status = status
        self.reason = reason
    }

    public var description: String { reason }
}

/// Turns a queued job into a runner. The webhook path calls it synchronously and answers after it returns.
public protocol RunnerProvisioner: Sendable {
    func provision(_ request: RunnerRequest) async throws(ProvisioningError) -> ProvisionOutcome
    /// Whether upstream dependencies answer; `/ready` reports it.
    func readiness() async -> Readiness
}
