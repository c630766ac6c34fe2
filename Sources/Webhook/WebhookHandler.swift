import HTTPServer
import Logging
import Observability
import Runners
import Support

/// `POST /webhook`: verify, decode, match, provision, answer — in that order, synchronously.
///
/// The answer is 200 only once the runner Job exists; every delivery ends in one `WebhookOutcome`, logged
/// once and counted. Nothing is parsed before the signature is verified.
package struct WebhookHandler: Sendable {
    private let verifier: SignatureVerifier
    private let matcher: any JobMatching
    private let deliveries: DeliveryLog
    private let provisioner: any RunnerProvisioner
    private let metrics: Metrics
    private let logger: Logger
    /// The whole provisioning step must finish within this, well inside GitHub's 10 s.
    private let deadline: Duration
    /// Times the deadline and each delivery's latency.
    private let clock: MonotonicClock
    /// Told about the repository of a verified, allowed `workflow_job` delivery with a job this service runs: a
    /// `queued` one whose labels match, or one about a runner of this service (the reconciler's list).
    private let onVerifiedRepository: (@Sendable (_ owner: String, _ repo: String) -> Void)?
    /// Which repositories' jobs are run; others are answered 403.
    private let allowList: RepositoryAllowList
    /// Told the GitHub App installation of every verified, allowed delivery that names one (`installation.id`).
    private let onVerifiedInstallation: (@Sendable (_ owner: String, _ installationID: Int64) -> Void)?
    /// The jobs this process saw `queued`.
    private let queuedJobs: QueuedJobMemory
    /// Told the repository of a sign that a `queued` delivery was lost (`webhook_missed_queued_total`).
    private let onSignOfLoss: (@Sendable (_ owner: String, _ repo: String) -> Void)?
    /// Told the hook a verified, allowed `workflow_job` delivery came through (`X-GitHub-Hook-ID`,
    /// `X-GitHub-Hook-Installation-Target-Type`), with the repository it names. The signature covers the body, not
    /// these headers: what reads them must expect a hook that does not exist.
    private let onVerifiedHook:
        (
            @Sendable (
                _ targetType: String?, _ hookID: String?, _ owner: String, _ repo: String, _ repositoryID: Int64?
            ) -> Void
        )?
    /// Whether the reconciler asked GitHub to redeliver the delivery with this GUID
    /// (`DeliveryRecovery.redelivered`): a runner Job made for it counts as a lost job recovered by redelivery.
    private let isRedelivery: (@Sendable (_ deliveryID: String) -> Bool)?

    /// - Parameters:
    ///   - allowList: `ALLOWED_OWNERS`/`ALLOWED_REPOSITORIES`; everyone by default.
    ///   - onVerifiedInstallation: for a GitHub App's credentials (`GitHubCredentials.remember`), so that the
    ///     installation of a delivery's owner needs no look-up.
    ///   - queuedJobs: remembers the jobs seen `queued` (made from `clock` unless given).
    ///   - onSignOfLoss: for the reconciler (`RepositoryRegistry.prioritize(owner:repo:loss:)`), which visits the
    ///     repository of a job in progress or completed that was never seen `queued` first.
    ///   - onVerifiedHook: for the redelivery of failed deliveries (`HookRegistry.remember`), which lists the
    ///     deliveries of the hooks deliveries came through, and maps the repository ids they list to names.
    ///   - isRedelivery: whether a delivery id is one the reconciler had GitHub redeliver.
    package init(
        verifier: SignatureVerifier,
        matcher: some JobMatching,
        deliveries: DeliveryLog,
        provisioner: any RunnerProvisioner,
        metrics: Metrics,
        logger: Logger,
        deadline: Duration = .seconds(8),
        clock: some Clock<Duration> = ContinuousClock(),
        onVerifiedRepository: (@Sendable (_ owner: String, _ repo: String) -> Void)? = nil,
        allowList: RepositoryAllowList = .everyone,
        onVerifiedInstallation: (@Sendable (_ owner: String, _ installationID: Int64) -> Void)? = nil,
        queuedJobs: QueuedJobMemory? = nil,
        onSignOfLoss: (@Sendable (_ owner: String, _ repo: String) -> Void)? = nil,
        onVerifiedHook: (
            @Sendable (
                _ targetType: String?, _ hookID: String?, _ owner: String, _ repo: String, _ repositoryID: Int64?
            ) -> Void
        )? = nil,
        isRedelivery: (@Sendable (_ deliveryID: String) -> Bool)? = nil
    ) {
        self.onVerifiedHook = onVerifiedHook
        self.isRedelivery = isRedelivery
        self.clock = MonotonicClock(clock)
        self.queuedJobs = queuedJobs ?? QueuedJobMemory(since: self.clock.epochSeconds)
        self.onSignOfLoss = onSignOfLoss
        self.onVerifiedRepository = onVerifiedRepository
        self.allowList = allowList
        self.onVerifiedInstallation = onVerifiedInstallation
        self.verifier = verifier
        self.matcher = matcher
        self.deliveries = deliveries
        self.provisioner = provisioner
        self.metrics = metrics
        self.logger = logger
        self.deadline = deadline
        metrics.registerOutcomes(WebhookOutcome.allCases.map(\.rawValue))
    }

    /// What one delivery came to: the outcome and what is known about it, for the response, log and metrics.
    struct Result {
        var outcome: WebhookOutcome
        var status: Int
        var message: String
        var event: WorkflowJobEvent?
        var runnerJob: String?
    }

    package func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let started = clock.now
        let deliveryID = request.headers["X-GitHub-Delivery"].map(sanitizedDeliveryID)
        let eventName = request.headers["X-GitHub-Event"]
        let result = await process(request, deliveryID: deliveryID, eventName: eventName)
        let elapsed = clock.now - started

        if let deliveryID, result.status < 300, result.outcome != .duplicateDelivery {
            deliveries.record(deliveryID)
        }
        let repository = result.event?.repository
        // A delivery from outside the allow-list may carry any name (a leaked secret): it mints no series.
        let labelled = result.outcome == .notAllowed ? nil : repository
        metrics.countWebhookRequest(status: result.status, owner: labelled?.owner.login, repo: labelled?.name)
        metrics.countOutcome(result.outcome.rawValue)
        metrics.webhookLatency.record(elapsed)
        if result.outcome == .accepted, let repository {
            metrics.countRunnerJobCreated(owner: repository.owner.login, repo: repository.name)
            if let deliveryID, isRedelivery?(deliveryID) == true {
                metrics.countLostJobRecovered(how: "redelivery")
            }
        }
        log(result, deliveryID: deliveryID, eventName: eventName, elapsed: elapsed)

        if result.outcome == .badSignature {
            return .text(401, "unauthorized")  // reveals nothing about why
        }
        var body: [(String, JSONValue)] = [
            ("outcome", .string(result.outcome.rawValue)), ("message", .string(result.message)),
        ]
        if let job = result.event?.workflowJob { body.append(("job_id", .int(Int(job.id)))) }
        if let runnerJob = result.runnerJob { body.append(("runner_job", .string(runnerJob))) }
        return HTTPResponse(
            status: result.status,
            headers: [("Content-Type", "application/json")],
            body: JSONValue.object(body).renderedBytes() + [UInt8(ascii: "\n")]
        )
    }

    private func process(_ request: HTTPRequest, deliveryID: String?, eventName: String?) async -> Result {
        guard verifier.isValid(signatureHeader: request.headers["X-Hub-Signature-256"], body: request.body) else {
            return Result(outcome: .badSignature, status: 401, message: "bad signature")
        }
        let payload: [UInt8]
        switch WebhookHandler.payload(of: request) {
        case .success(let bytes): payload = bytes
        case .failure(let error): return Result(outcome: .badRequest, status: error.status, message: error.message)
        }
        guard let eventName, !eventName.isEmpty else {
            return Result(outcome: .badRequest, status: 400, message: "missing X-GitHub-Event header")
        }
        if let deliveryID, deliveries.contains(deliveryID) {
            return Result(outcome: .duplicateDelivery, status: 200, message: "delivery already handled")
        }
        if eventName == "ping" {
            return Result(outcome: .ping, status: 200, message: "pong")
        }
        guard eventName == "workflow_job" else {
            // GitHub sends what the hook subscribes to: never 4xx a correctly signed delivery.
            return Result(outcome: .ignoredEvent, status: 202, message: "event ignored")
        }
        let event: WorkflowJobEvent
        do {
            event = try WorkflowJobEvent.decode(payload)
        } catch {
            return Result(outcome: .badRequest, status: 400, message: error.description)
        }
        let runnerRequest: RunnerRequest
        let decision = DeliveryDecision(event, allowList: allowList, matcher: matcher, deliveryID: deliveryID)
        if case .answer(.notAllowed, let status, let message) = decision {
            return Result(outcome: .notAllowed, status: status, message: message, event: event)
        }
        if let installation = event.installation {
            onVerifiedInstallation?(event.repository.owner.login, installation.id)
        }
        onVerifiedHook?(
            request.headers["X-GitHub-Hook-Installation-Target-Type"],
            request.headers["X-GitHub-Hook-ID"],
            event.repository.owner.login,
            event.repository.name,
            event.repository.id
        )
        noteSignsOfLoss(event)
        // Only a repository with a job this service runs is recorded: one whose jobs never matched is not watched.
        let ours = event.workflowJob.runnerName.flatMap { RunnerName(parsing: $0, as: .registration) }
        if ours != nil { onVerifiedRepository?(event.repository.owner.login, event.repository.name) }
        switch decision {
        case .answer(let outcome, let status, let message):
            return Result(outcome: outcome, status: status, message: message, event: event)
        case .replaceRunner(let intended):
            return await replaceRunner(for: intended, takenBy: event, deliveryID: deliveryID)
        case .provision(let request):
            if ours == nil { onVerifiedRepository?(event.repository.owner.login, event.repository.name) }
            runnerRequest = request
        }
        switch await provisionWithinDeadline(runnerRequest) {
        case .success(.created(let name)):
            return Result(outcome: .accepted, status: 200, message: "runner job created", event: event, runnerJob: name)
        case .success(.alreadyProvisioned(let name)):
            return Result(
                outcome: .alreadyProvisioned,
                status: 200,
                message: "already provisioned",
                event: event,
                runnerJob: name
            )
        case .success(.foreignRunner):
            return Result(outcome: .ignoredAction, status: 200, message: "action ignored", event: event)
        case .success(.deferred(let reason)):
            return Result(outcome: .deferred, status: 202, message: "deferred (\(reason))", event: event)
        case .success(.notQueued(let status)):
            return Result(
                outcome: .notQueued,
                status: 200,
                message: "job is no longer queued (\(status))",
                event: event
            )
        case .failure(let error):
            return Result(outcome: .upstreamError, status: error.status, message: error.reason, event: event)
        }
    }

    /// Remembers a job seen `queued`; a matching job in progress, or completed on a runner, that was queued after
    /// this process started and never seen `queued` here is counted, logged and its repository visited first.
    private func noteSignsOfLoss(_ event: WorkflowJobEvent) {
        let job = event.workflowJob
        switch event.action {
        case "queued", "waiting":
            queuedJobs.remember(job.id)
            return
        case "in_progress":
            break
        case "completed" where job.runnerName?.isEmpty == false:
            break
        default:
            return
        }
        guard !queuedJobs.contains(job.id), matcher.matches(job.labels),
            let queuedAt = job.createdAt.flatMap(Timestamps.parse), queuedAt >= queuedJobs.since
        else { return }
        queuedJobs.remember(job.id)  // one sign per job
        let owner = event.repository.owner.login
        metrics.countMissedQueued(owner: owner)
        logger.notice(
            "a job in progress or completed was never seen queued; its repository is reconciled first",
            metadata: ["job.id": "\(job.id)", "repo": "\(owner)/\(event.repository.name)", "action": "\(event.action)"]
        )
        onSignOfLoss?(owner, event.repository.name)
    }

    /// Any idle runner whose labels fit may take any queued job: when the runner made for job X starts job Y,
    /// X is without a runner again. Provision one for X now (GitHub says whether X still waits, and its labels).
    private func replaceRunner(
        for intended: Int64,
        takenBy event: WorkflowJobEvent,
        deliveryID: String?
    ) async -> Result {
        var request = RunnerRequest(
            owner: event.repository.owner.login,
            repository: event.repository.name,
            jobID: intended,
            runID: 0,
            jobName: "",
            labels: [],
            deliveryID: deliveryID
        )
        request.replacing = event.workflowJob.id
        request.takenByRunner = event.workflowJob.runnerName
        logger.info(
            "runner made for another job took this one",
            metadata: [
                "job.id": "\(event.workflowJob.id)", "runner.name": "\(event.workflowJob.runnerName ?? "")",
                "intended_job.id": "\(intended)",
            ]
        )
        switch await provisionWithinDeadline(request) {
        case .success(.created(let name)), .success(.alreadyProvisioned(let name)):
            return Result(
                outcome: .runnerReplaced,
                status: 200,
                message: "runner for job \(intended) replaced",
                event: event,
                runnerJob: name
            )
        case .success(.notQueued):
            return Result(outcome: .ignoredAction, status: 200, message: "action ignored", event: event)
        case .success(.deferred(let reason)):
            return Result(outcome: .deferred, status: 202, message: "deferred (\(reason))", event: event)
        case .success(.foreignRunner):
            // A name shaped like ours is no proof: no runner Job of this deployment records that registration.
            return Result(
                outcome: .ignoredAction,
                status: 200,
                message: "runner not made by this deployment",
                event: event
            )
        case .failure(let error):
            logger.warning(
                "replacing a taken runner failed",
                metadata: ["intended_job.id": "\(intended)", "error": "\(error)"]
            )
            return Result(outcome: .upstreamError, status: error.status, message: error.reason, event: event)
        }
    }

    private func provisionWithinDeadline(
        _ request: RunnerRequest
    ) async -> Swift.Result<ProvisionOutcome, ProvisioningError> {
        let provisioner = self.provisioner
        let deadline = self.deadline
        let clock = self.clock
        let timedOut = ProvisioningError(status: 503, reason: "provisioning timed out")
        /// What finished first: provisioning (with its result), or the deadline (nil: cancelled, nothing to say).
        enum Finished: Sendable {
            case provisioning(Swift.Result<ProvisionOutcome, ProvisioningError>)
            case deadline
        }
        return await withTaskGroup(of: Finished?.self) { group in
            group.addTask {
                do throws(ProvisioningError) {
                    return .provisioning(.success(try await provisioner.provision(request)))
                } catch {
                    return .provisioning(.failure(error))
                }
            }
            group.addTask {
                try? await clock.sleep(for: deadline)
                return Task.isCancelled ? nil : .deadline
            }
            defer { group.cancelAll() }
            while let finished = await group.next() {
                switch finished {
                case .provisioning(let result)?:
                    return result
                case .deadline?:
                    // Provisioning is cancelled, and the answer waits for it to stop: when its last call was
                    // answered meanwhile, the runner exists and the answer says so rather than 503.
                    group.cancelAll()
                    while let late = await group.next() {
                        if case .provisioning(.success(let outcome))? = late { return .success(outcome) }
                    }
                    return .failure(timedOut)
                case nil:
                    continue
                }
            }
            return .failure(timedOut)
        }
    }

    // MARK: - Body

    struct PayloadError: Error {
        var status: Int
        var message: String
    }

    /// The JSON payload: the body itself, or the `payload` field of a form-encoded body.
    static func payload(of request: HTTPRequest) -> Swift.Result<[UInt8], PayloadError> {
        let mediaType =
            request.headers["Content-Type"]?
            .split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first
            .map { $0.trimmingOWS().asciiLowercased } ?? ""
        switch mediaType {
        case "application/json":
            return .success(request.body)
        case "application/x-www-form-urlencoded":
            guard let payload = FormDecoding.value(of: "payload", in: request.body) else {
                return .failure(PayloadError(status: 400, message: "form body without a valid payload field"))
            }
            return .success(payload)
        default:
            return .failure(
                PayloadError(
                    status: 415,
                    message: "content type must be application/json or application/x-www-form-urlencoded"
                )
            )
        }
    }

    // MARK: - Logging

    private func log(_ result: Result, deliveryID: String?, eventName: String?, elapsed: Duration) {
        var metadata: Logger.Metadata = [
            "outcome": "\(result.outcome.rawValue)",
            "status": "\(result.status)",
            "duration_ms": "\(elapsed.milliseconds)",
        ]
        if let deliveryID { metadata["delivery"] = "\(deliveryID)" }
        if result.outcome != .badSignature, let eventName { metadata["event"] = "\(sanitizedDeliveryID(eventName))" }
        if let event = result.event {
            metadata["action"] = "\(event.action)"
            metadata["repo"] = "\(event.repository.owner.login)/\(event.repository.name)"
            metadata["job.id"] = "\(event.workflowJob.id)"
            metadata["job.labels"] = "\(event.workflowJob.labels.joined(separator: ","))"
        }
        if let runnerJob = result.runnerJob { metadata["runner_job"] = "\(runnerJob)" }
        switch result.outcome {
        case .upstreamError, .badRequest, .notAllowed:
            metadata["reason"] = "\(result.message)"
            logger.warning("\(Logger.Message(stringLiteral: result.message))", metadata: metadata)
        case .badSignature:
            logger.warning("webhook signature missing or wrong", metadata: metadata)
        case .deferred:
            metadata["reason"] = "\(result.message)"
            logger.notice("delivery deferred; the reconciler provisions the job", metadata: metadata)
        default:
            logger.info("\(Logger.Message(stringLiteral: result.message))", metadata: metadata)
        }
    }
}

/// Delivery ids are GUIDs; anything else is cut down before it reaches a log line.
func sanitizedDeliveryID(_ text: String) -> String {
    let allowed = text.utf8.prefix(64).map { byte -> UInt8 in
        let ok =
            (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || byte == 45
            || byte == 95
        return ok ? byte : UInt8(ascii: "?")
    }
    return String(decoding: allowed, as: UTF8.self)
}

/// `application/x-www-form-urlencoded` decoding, for GitHub's form content type.
package enum FormDecoding {
    /// The decoded value of the first `name` field, or nil when absent or badly encoded.
    package static func value(of name: String, in body: [UInt8]) -> [UInt8]? {
        for pair in body.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = percentDecode(parts[0]), key == Array(name.utf8) else { continue }
            return parts.count > 1 ? percentDecode(parts[1]) : []
        }
        return nil
    }

    static func percentDecode(_ bytes: ArraySlice<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.endIndex, let high = Hex.value(of: bytes[index + 1]),
                    let low = Hex.value(of: bytes[index + 2])
                else {
                    return nil
                }
                out.append(high << 4 | low)
                index += 2
            } else {
                out.append(byte)
            }
            index += 1
        }
        return out
    }
}
