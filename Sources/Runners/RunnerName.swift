/// The names this service gives, and the one parser that reads them back.
///
/// A runner Job is `runner-<job id>`, `runner-<job id>-after-<job its first runner took>` for a replacement, and
/// either of those plus `-r<attempt>` (2...99) when a finished Job of the same job is replaced; a warm pool's runner,
/// made before any job, is `runner-warm-<5 characters>`. Its registration is the Job's name plus `-<5 characters>`
/// (`[a-z0-9]`). A name is only a hint: ownership is proven by the
/// deployment's marker label and by the registration recorded on the Job's Secret, never by the shape of a name.
package struct RunnerName: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// What a name names.
    package enum Kind: Sendable {
        /// A Kubernetes runner Job: no random suffix.
        case job
        /// A GitHub runner registration: the Job's name and a random suffix.
        case registration
    }

    /// The job the runner was made for.
    package var jobID: Int64
    /// For a replacement: the job the first runner of `jobID` took instead.
    package var after: Int64?
    /// 1 for the first Job of a job (no `-r` part); 2... for the Jobs replacing a finished one.
    package var attempt: Int
    /// The random suffix of a registration; nil for a Job.
    package var suffix: String?
    /// A warm pool's runner: its random id (`jobID` is 0, as no job has that id).
    package var warmID: String?

    package init(jobID: Int64, after: Int64? = nil, attempt: Int = 1, suffix: String? = nil) {
        self.jobID = jobID
        self.after = after
        self.attempt = attempt
        self.suffix = suffix
    }

    /// A warm pool's runner.
    package init(warmID: String, suffix: String? = nil) {
        self.init(jobID: 0, suffix: suffix)
        self.warmID = warmID
    }

    /// Whether it names a warm pool's runner (made for no job).
    package var isWarm: Bool { warmID != nil }

    /// The highest attempt a name may carry, so `r<attempt>` is never five characters (a suffix's length).
    package static let maxAttempt = 99

    /// Parses `name` as a `kind`; nil for any name this service does not give.
    package init?(parsing name: String, as kind: Kind) {
        var parts = name.split(separator: "-", omittingEmptySubsequences: false)[...]
        func isNumber(_ part: Substring) -> Bool {
            !part.isEmpty && part.count <= 18 && part.allSatisfy { $0.isASCII && $0.isNumber }
        }
        func isSuffix(_ part: Substring) -> Bool {
            part.count == 5 && part.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber) }
        }
        if parts.count >= 3, parts[parts.startIndex] == "runner", parts[parts.startIndex + 1] == "warm" {
            parts.removeFirst(2)
            guard let id = parts.popFirst(), isSuffix(id) else { return nil }
            var suffix: String?
            if kind == .registration {
                guard let last = parts.popFirst(), isSuffix(last) else { return nil }
                suffix = String(last)
            }
            guard parts.isEmpty else { return nil }
            self.init(warmID: String(id), suffix: suffix)
            return
        }
        guard parts.count >= 2, parts.removeFirst() == "runner", let first = parts.first, isNumber(first),
            let jobID = Int64(first)
        else { return nil }
        parts.removeFirst()
        var suffix: String?
        if kind == .registration {
            guard let last = parts.popLast(), last.count == 5,
                last.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber) })
            else { return nil }
            suffix = String(last)
        }
        var after: Int64?
        if parts.first == "after" {
            guard parts.count >= 2, isNumber(parts[parts.startIndex + 1]),
                let other = Int64(parts[parts.startIndex + 1])
            else { return nil }
            after = other
            parts.removeFirst(2)
        }
        var attempt = 1
        if let part = parts.first, part.first == "r" {
            let digits = part.dropFirst()
            guard isNumber(digits), digits.first != "0", let value = Int(digits), (2...Self.maxAttempt).contains(value)
            else { return nil }
            attempt = value
            parts.removeFirst()
        }
        guard parts.isEmpty else { return nil }
        self.init(jobID: jobID, after: after, attempt: attempt, suffix: suffix)
    }

    /// The runner Job's name.
    package var jobName: String {
        if let warmID { return "runner-warm-\(warmID)" }
        var name = "runner-\(jobID)"
        if let after { name += "-after-\(after)" }
        if attempt > 1 { name += "-r\(attempt)" }
        return name
    }

    /// The registration's name for this Job with `suffix`.
    package func registrationName(suffix: String) -> String {
        "\(jobName)-\(suffix)"
    }

    package var description: String {
        suffix.map(registrationName(suffix:)) ?? jobName
    }
}
