import Runners
import Support
import Webhook
import Yams

/// `kube-actions-runner render`: the Job and Secret that a `workflow_job` delivery, or a job with given labels,
/// would get with the configuration in the environment, as a stream `kubectl apply --dry-run=server -f -` takes.
///
/// Offline: nothing is sent to GitHub or Kubernetes. The environment is read by `Configuration(environment:)` as for
/// `serve`, with GitHub credentials and the webhook secret not required (as under `DRY_RUN`); when a cluster
/// connection can be read from files (service account or `KUBECONFIG`), its namespace applies as it would for
/// `serve`. The delivery goes through `DeliveryDecision`, the webhook handler's own steps, and the Job and Secret
/// through `RunnerJob.render(for:settings:)` and `RunnerJob.secret`, the provisioner's own rendering. What GitHub or
/// the API server would fill in is marked:
/// - the JIT config is redacted (as the demo shows it), as is every other value of the Secret (proxy URLs);
/// - the Secret's runner id (`0`) and runner name (suffix `xxxxx`) labels are placeholders for what the JIT call
///   returns;
/// - the Secret has no `ownerReferences`: the provisioner sets the created Job's uid there, which does not exist
///   before the Job is created. A made-up uid would let the garbage collector delete a Secret applied for real.
package enum Render {
    /// The output's form: YAML documents, or JSON (a `v1` `List` of the two objects).
    package enum Format: String, CaseIterable, Sendable {
        case yaml
        case json
    }

    /// What to render for.
    package enum Source: Sendable {
        /// A `workflow_job` delivery body as GitHub sends it: JSON, or a form body with a `payload` field.
        case payload([UInt8])
        /// A queued job asking for these labels, in `owner/repository`.
        case labels([String], owner: String, repository: String, jobID: Int64)
    }

    /// Why nothing was rendered; `exitCode` is the process's exit status.
    package struct Failure: Error, Equatable, CustomStringConvertible {
        /// 2 for an invalid configuration (as `serve` exits), 1 for everything else: an unreadable payload, or a
        /// job the service would not provision.
        package var exitCode: Int32
        package var description: String
    }

    /// What the Secret shows instead of the JIT config (the demo shows the same).
    static let redactedJITConfig = "<redacted: the JIT config GitHub issues>"
    /// The suffix of the placeholder runner name (the provisioner's is random).
    static let placeholderSuffix = "xxxxx"

    /// The rendered Job and Secret, or why there are none.
    package static func manifests(
        for source: Source,
        format: Format,
        environment: [String: String],
        files: some FileReading = LocalFiles()
    ) throws(Failure) -> String {
        let configuration = try configuration(environment: environment, files: files)
        let profiles = configuration.runnerProfiles
        let request = try runnerRequest(for: source, configuration: configuration, profiles: profiles)
        // The decision took the request only if a profile takes its labels.
        let profile =
            profiles.profile(for: request.labels)
            ?? RunnerProfile(name: nil, matcher: configuration.labelMatcher, settings: configuration.runnerSettings)
        let job = profile.render(for: request)
        let rendered = job.secret(
            jitConfig: redactedJITConfig,
            jobUID: "",
            runnerID: 0,
            runnerName: request.runnerName.registrationName(suffix: placeholderSuffix)
        )
        // A Job's Secret may hold proxy credentials: every value redacted. A custom backend's entries come from its
        // template and hold nothing else secret: shown, with the JIT config redacted where it goes.
        let secret = withoutOwnerReferences(job.backend == nil ? redactingSecretValues(rendered) : rendered)
        let object = job.resource.map { "\($0.kind)" } ?? "Job"
        switch format {
        case .json:
            let list: JSONValue = .object([
                ("apiVersion", "v1"), ("kind", "List"), ("items", [job.job, secret]),
            ])
            return list.rendered(pretty: true) + "\n"
        case .yaml:
            return
                "# The runner \(object) for job \(request.jobID) of \(request.owner)/\(request.repository)"
                + " (kube-actions-runner render).\n" + profileComment(profile, of: profiles, labels: request.labels)
                + "---\n"
                + yaml(job.job) + "---\n"
                + "# Its Secret. Unlike the provisioner's, it has no ownerReferences: the provisioner sets the created \(object)'s\n"
                + "# uid there, which exists only once the \(object) is created. The JIT config is redacted; the runner-id and\n"
                + "# runner-name labels are placeholders for what GitHub's JIT call returns.\n" + yaml(secret)
        }
    }

    /// Which profile took the job and what its runner registers with; nothing for the environment's own profile
    /// (whose output predates profiles).
    static func profileComment(_ profile: RunnerProfile, of profiles: RunnerProfiles, labels: [String]) -> String {
        guard let name = profile.name else { return "" }
        let position = (profiles.profiles.firstIndex { $0.name == name } ?? 0) + 1
        return
            "# Profile \(name) (PROFILES_FILE, profile \(position) of \(profiles.profiles.count): the first whose match"
            + " takes [\(labels.joined(separator: ", "))]); its runner registers with"
            + " [\(profile.registrationLabels(for: labels).joined(separator: ", "))].\n"
    }

    /// A payload file's bytes (the command reads `-`, standard input, itself).
    package static func payload(at path: String, files: some FileReading = LocalFiles()) throws(Failure) -> [UInt8] {
        let text: String?
        do {
            text = try files.read(path)
        } catch {
            throw Failure(exitCode: 1, description: "payload file \(path): \(error)")
        }
        guard let text else { throw Failure(exitCode: 1, description: "payload file \(path) does not exist") }
        return Array(text.utf8)
    }

    // MARK: - Steps

    /// The configuration `serve` would read, without the credentials a render does not use.
    static func configuration(environment: [String: String], files: some FileReading) throws(Failure) -> Configuration {
        var offline = environment
        offline["DRY_RUN"] = "true"
        if (environment["WEBHOOK_SECRET"] ?? "").isEmpty, (environment["WEBHOOK_SECRET_FILE"] ?? "").isEmpty {
            offline["WEBHOOK_SECRET"] = "unused-by-render"
        }
        var configuration: Configuration
        do {
            configuration = try Configuration(environment: offline, files: files)
        } catch {
            throw Failure(exitCode: 2, description: "invalid configuration:\n\(error)")
        }
        // Under DRY_RUN, `serve` connects to no cluster and keeps the configured namespace.
        var reader = SettingsReader(environment: environment, files: files)
        configuration.dryRun = reader.bool("DRY_RUN", default: false)
        if !reader.errors.isEmpty {
            throw Failure(
                exitCode: 2,
                description: "invalid configuration:\n\(ConfigurationErrors(errors: reader.errors))"
            )
        }
        if !configuration.dryRun,
            let (_, resolved) = try? Provisioning.connect(
                configuration: configuration,
                environment: environment,
                files: files
            )
        {
            configuration = resolved
        }
        return configuration
    }

    /// The request the webhook handler would hand the provisioner, or why it would hand none.
    static func runnerRequest(
        for source: Source,
        configuration: Configuration,
        profiles: RunnerProfiles
    ) throws(Failure) -> RunnerRequest {
        let body: [UInt8]
        switch source {
        case .payload(let bytes):
            let start = bytes.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
            if start == UInt8(ascii: "{") {
                body = bytes
            } else if let field = FormDecoding.value(of: "payload", in: bytes) {
                body = field
            } else {
                throw Failure(exitCode: 1, description: "the payload is neither JSON nor a form with a payload field")
            }
        case .labels(let labels, let owner, let repository, let jobID):
            body = queuedPayload(labels: labels, owner: owner, repository: repository, jobID: jobID).renderedBytes()
        }
        let event: WorkflowJobEvent
        do {
            event = try WorkflowJobEvent.decode(body)
        } catch {
            throw Failure(exitCode: 1, description: "not a workflow_job delivery: \(error)")
        }
        let decision = DeliveryDecision(
            event,
            allowList: configuration.allowList,
            matcher: profiles,
            deliveryID: nil
        )
        switch decision {
        case .provision(let request):
            return request
        case .replaceRunner(let intended):
            throw Failure(
                exitCode: 1,
                description:
                    "an in_progress delivery: the service would replace the runner made for job \(intended) (\(WebhookOutcome.runnerReplaced.rawValue)); render its queued delivery instead"
            )
        case .answer(.labelsDoNotMatch, _, _) where configuration.profilesFile != nil:
            throw Failure(
                exitCode: 1,
                description: "labels [\(event.workflowJob.labels.joined(separator: ", "))] are taken by no profile of"
                    + " PROFILES_FILE: the service would answer \(WebhookOutcome.labelsDoNotMatch.rawValue)\n"
                    + profiles.mismatches(for: event.workflowJob.labels).map { "  \($0)" }.joined(separator: "\n")
            )
        case .answer(.labelsDoNotMatch, _, _):
            let mismatches = configuration.labelMatcher.mismatches(for: event.workflowJob.labels)
            throw Failure(
                exitCode: 1,
                description: "labels [\(event.workflowJob.labels.joined(separator: ", "))] match no LABEL_MATCHERS"
                    + " matcher: the service would answer \(WebhookOutcome.labelsDoNotMatch.rawValue)\n"
                    + mismatches.map { "  \($0)" }.joined(separator: "\n")
            )
        case .answer(let outcome, _, let message):
            throw Failure(
                exitCode: 1,
                description: "nothing to provision for job \(event.workflowJob.id) of"
                    + " \(event.repository.owner.login)/\(event.repository.name) (action \(event.action), status"
                    + " \(event.workflowJob.status)): the service would answer \(outcome.rawValue) (\(message))"
            )
        }
    }

    /// A `queued` delivery of a job with these labels, holding what the service reads.
    static func queuedPayload(labels: [String], owner: String, repository: String, jobID: Int64) -> JSONValue {
        .object([
            ("action", "queued"),
            (
                "workflow_job",
                .object([
                    ("id", .int(Int(jobID))), ("run_id", 0), ("name", "render"), ("status", "queued"),
                    ("labels", .array(labels.map { .string($0) })),
                ])
            ),
            (
                "repository",
                .object([
                    ("name", .string(repository)), ("full_name", .string("\(owner)/\(repository)")),
                    ("owner", .object([("login", .string(owner))])),
                ])
            ),
        ])
    }

    /// The Secret with every value of `stringData` replaced: the JIT config by the demo's placeholder, the others
    /// (proxy URLs, which may hold credentials) by one naming their key.
    static func redactingSecretValues(_ secret: JSONValue) -> JSONValue {
        replacing("stringData", in: secret) { data in
            guard case .object(let values) = data else { return data }
            return .object(
                values.map { key, _ in
                    (key, .string(key == RunnerJob.secretKey ? redactedJITConfig : "<redacted: \(key)>"))
                }
            )
        }
    }

    /// The Secret without `metadata.ownerReferences`.
    static func withoutOwnerReferences(_ secret: JSONValue) -> JSONValue {
        replacing("metadata", in: secret) { metadata in
            guard case .object(let members) = metadata else { return metadata }
            return .object(members.filter { $0.0 != "ownerReferences" })
        }
    }

    private static func replacing(
        _ key: String,
        in object: JSONValue,
        with transform: (JSONValue) -> JSONValue
    ) -> JSONValue {
        guard case .object(let members) = object else { return object }
        return .object(members.map { ($0.0, $0.0 == key ? transform($0.1) : $0.1) })
    }

    // MARK: - YAML

    /// One YAML document, keys in the rendered order; strings YAML would read as another type are quoted.
    static func yaml(_ value: JSONValue) -> String {
        // Serializing a tree of plain scalars, sequences and mappings cannot fail.
        (try? Yams.serialize(node: node(value), width: -1)) ?? ""
    }

    private static func node(_ value: JSONValue) -> Node {
        switch value {
        case .object(let members):
            return Node(members.map { (node(.string($0.0)), node($0.1)) })
        case .array(let values):
            return Node(values.map(node))
        case .string(let text):
            let plain = Node(text)
            let readsAsString = Resolver.default.resolveTag(of: plain) == .str
            return readsAsString ? plain : Node(text, Tag(.str), .doubleQuoted)
        case .int(let number):
            return Node(String(number), Tag(.int))
        case .bool(let flag):
            return Node(flag ? "true" : "false", Tag(.bool))
        case .null:
            return Node("null", Tag(.null))
        }
    }
}
