import Logging
import Observability
import Runners
import Support

/// One problem with the configuration, naming its key; never carries a secret's value.
package struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    package var key: String
    package var message: String

    package var description: String { "\(key): \(message)" }
}

/// Every problem found at once, so an operator fixes them in one round.
package struct ConfigurationErrors: Error, Equatable, CustomStringConvertible {
    package var errors: [ConfigurationError]

    package var description: String { errors.map(\.description).joined(separator: "\n") }
}

extension Configuration {
    /// Reads and validates the configuration. The environment is a parameter: tests never touch the process's.
    package init(environment: [String: String], files: some FileReading = LocalFiles()) throws(ConfigurationErrors) {
        var reader = EnvironmentReader(environment: environment, files: files)

        let dryRun = reader.bool("DRY_RUN", default: false)
        let allowCleartextCredentials = reader.bool("ALLOW_CLEARTEXT_CREDENTIALS", default: false)
        let releaseCodePages = reader.bool("RELEASE_CODE_PAGES", default: false)
        let webhookSecret = reader.secret("WEBHOOK_SECRET", required: true)
        let previousWebhookSecret = reader.secret("WEBHOOK_SECRET_PREVIOUS", required: false)
        let githubToken = reader.secret("GITHUB_TOKEN", required: !dryRun)
        let githubAPIURL = reader.url("GITHUB_API_URL", default: Defaults.githubAPIURL)
        let githubCAFile = reader.existingFile("GITHUB_CA_FILE", files: files)
        let runnerMode = reader.choice("RUNNER_MODE", default: Defaults.runnerMode)
        let runnerImage = reader.image("RUNNER_IMAGE", default: Defaults.runnerImage)
        let dindImage = reader.image("DIND_IMAGE", default: Defaults.dindImage)
        let dindMTU = reader.optionalInt("DIND_MTU", range: 576...9216)
        let namespace = reader.namespace(files: files)
        let labelMatcher = reader.labelMatcher()
        let listenAddress = reader.string("LISTEN_ADDRESS", default: Defaults.listenAddress)
        let port = reader.int("PORT", default: Defaults.port, range: 1...65535)
        let metricsPort = reader.optionalInt("METRICS_PORT", range: 1...65535)
        if let metricsPort, metricsPort == port {
            reader.fail("METRICS_PORT", "must differ from PORT (\(port))")
        }
        let jobTTLSeconds = reader.int("JOB_TTL_SECONDS", default: Defaults.jobTTLSeconds, range: 0...Int(Int32.max))
        let runnerGroupID = reader.int("RUNNER_GROUP_ID", default: Defaults.runnerGroupID, range: 1...Int(Int32.max))
        let maxBodyBytes = reader.int(
            "MAX_BODY_BYTES",
            default: Defaults.maxBodyBytes,
            range: 1024...Defaults.maxBodyBytesLimit
        )
        let maxConnections = reader.int("MAX_CONNECTIONS", default: Defaults.maxConnections, range: 16...1_000_000)
        // One request of the largest accepted size must always fit.
        let maxInflightBodyBytes = reader.int(
            "MAX_INFLIGHT_BODY_BYTES",
            default: max(Defaults.maxInflightBodyBytes, maxBodyBytes + Defaults.largestHeadBytes),
            range: (maxBodyBytes + Defaults.largestHeadBytes)...(1 << 40)
        )
        let logLevel = reader.logLevel()
        let logFormat = reader.choice("LOG_FORMAT", default: LogFormat.json)
        let reconcileInterval = reader.int("RECONCILE_INTERVAL", default: 60, range: 1...3600)
        let reconcileGrace = reader.int("RECONCILE_GRACE", default: 60, range: 0...3600)
        let runnerIdleTimeout = reader.int("RUNNER_IDLE_TIMEOUT", default: 600, range: 0...86_400)
        let repositories = reader.repositories()
        let rateLimitReserve = reader.int("RATE_LIMIT_RESERVE", default: 500, range: 0...1_000_000)
        let runnerOwnerLabel = reader.ownerLabel("RUNNER_OWNER_LABEL")
        let identity = reader.value("POD_NAME") ?? reader.value("HOSTNAME") ?? "kube-actions-runner-\(randomSuffix())"

        guard reader.errors.isEmpty, let webhookSecret else {
            throw ConfigurationErrors(errors: reader.errors)
        }
        self.init(
            webhookSecret: webhookSecret,
            previousWebhookSecret: previousWebhookSecret,
            githubToken: githubToken,
            githubAPIURL: githubAPIURL,
            githubCAFile: githubCAFile,
            runnerMode: runnerMode,
            runnerImage: runnerImage,
            dindImage: dindImage,
            dindMTU: dindMTU,
            namespace: namespace,
            namespaceIsExplicit: reader.value("NAMESPACE") != nil,
            labelMatcher: labelMatcher,
            listenAddress: listenAddress,
            port: port,
            metricsPort: metricsPort,
            jobTTLSeconds: jobTTLSeconds,
            runnerGroupID: runnerGroupID,
            maxBodyBytes: maxBodyBytes,
            maxConnections: maxConnections,
            maxInflightBodyBytes: maxInflightBodyBytes,
            logLevel: logLevel,
            logFormat: logFormat,
            dryRun: dryRun,
            allowCleartextCredentials: allowCleartextCredentials,
            reconcileInterval: .seconds(reconcileInterval),
            reconcileGrace: .seconds(reconcileGrace),
            runnerIdleTimeout: .seconds(runnerIdleTimeout),
            repositories: repositories,
            rateLimitReserve: rateLimitReserve,
            identity: identity,
            runnerOwnerLabel: runnerOwnerLabel,
            releaseCodePages: releaseCodePages
        )
    }
}

/// Reads typed values and collects problems instead of stopping at the first.
private struct EnvironmentReader<Files: FileReading> {
    let environment: [String: String]
    let files: Files
    var errors: [ConfigurationError] = []

    init(environment: [String: String], files: Files) {
        self.environment = environment
        self.files = files
    }

    /// A set, non-blank value; blank counts as unset (templated manifests often render empty values).
    func value(_ key: String) -> String? {
        guard let raw = environment[key] else { return nil }
        let trimmed = raw.trimmingOWS()
        return trimmed.isEmpty ? nil : trimmed
    }

    mutating func fail(_ key: String, _ message: String) {
        errors.append(ConfigurationError(key: key, message: message))
    }

    mutating func secret(_ key: String, required: Bool) -> Secret? {
        let fileKey = key + "_FILE"
        let direct = environment[key].flatMap { $0.isEmpty ? nil : $0 }
        let path = value(fileKey)
        if direct != nil, path != nil {
            fail(key, "set either \(key) or \(fileKey), not both")
            return nil
        }
        var secret: String?
        if let path {
            do {
                guard let contents = try files.read(path) else {
                    fail(fileKey, "file \(path) does not exist")
                    return nil
                }
                secret = contents.droppingTrailingNewlines()
            } catch {
                fail(fileKey, "\(error)")
                return nil
            }
        } else {
            secret = direct
        }
        guard let secret, !secret.isEmpty else {
            if required { fail(key, "required (set \(key) or \(fileKey))") }
            return nil
        }
        if secret.utf8.contains(where: { $0 == 0x0A || $0 == 0x0D }) {
            fail(key, "must be a single line")
            return nil
        }
        return Secret(secret)
    }

    mutating func existingFile(_ key: String, files: Files) -> String? {
        guard let path = value(key) else { return nil }
        do {
            guard try files.read(path) != nil else {
                fail(key, "file \(path) does not exist")
                return nil
            }
        } catch {
            fail(key, "\(error)")
            return nil
        }
        return path
    }

    func string(_ key: String, default defaultValue: String) -> String {
        value(key) ?? defaultValue
    }

    mutating func int(_ key: String, default defaultValue: Int, range: ClosedRange<Int>) -> Int {
        guard let text = value(key) else { return defaultValue }
        guard let number = Int(text), range.contains(number) else {
            fail(key, "'\(text)' is not a whole number in \(range.lowerBound)...\(range.upperBound)")
            return defaultValue
        }
        return number
    }

    mutating func optionalInt(_ key: String, range: ClosedRange<Int>) -> Int? {
        guard value(key) != nil else { return nil }
        return int(key, default: range.lowerBound, range: range)
    }

    mutating func bool(_ key: String, default defaultValue: Bool) -> Bool {
        guard let text = value(key)?.asciiLowercased else { return defaultValue }
        switch text {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default:
            fail(key, "'\(text)' is not a boolean (true or false)")
            return defaultValue
        }
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ key: String, default defaultValue: T) -> T
    where T.RawValue == String {
        guard let text = value(key) else { return defaultValue }
        guard let choice = T(rawValue: text.asciiLowercased) else {
            let allowed = T.allCases.map(\.rawValue).joined(separator: ", ")
            fail(key, "'\(text)' is not one of \(allowed)")
            return defaultValue
        }
        return choice
    }

    mutating func url(_ key: String, default defaultValue: String) -> String {
        guard let text = value(key) else { return defaultValue }
        let lowered = text.asciiLowercased
        guard lowered.hasPrefix("https://") || lowered.hasPrefix("http://"),
            !text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }),
            text.split(separator: "/", omittingEmptySubsequences: true).count >= 2
        else {
            fail(key, "'\(text)' is not an http(s) URL")
            return defaultValue
        }
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    mutating func image(_ key: String, default defaultValue: String) -> String {
        guard let text = value(key) else { return defaultValue }
        guard !text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            fail(key, "'\(text)' is not an image reference")
            return defaultValue
        }
        return text
    }

    mutating func namespace(files: Files) -> String {
        if let text = value("NAMESPACE") {
            guard isDNSLabel(text) else {
                fail(
                    "NAMESPACE",
                    "'\(text)' is not a valid namespace name (lowercase DNS label, at most 63 characters)"
                )
                return Configuration.Defaults.namespace
            }
            return text
        }
        if let contents = try? files.read(Configuration.Defaults.serviceAccountNamespaceFile) {
            let text = contents.trimmingOWS().droppingTrailingNewlines()
            if isDNSLabel(text) { return text }
        }
        return Configuration.Defaults.namespace
    }

    /// A marker usable both as a GitHub runner label and as a Kubernetes label value.
    mutating func ownerLabel(_ key: String) -> String? {
        guard let text = value(key) else { return nil }
        guard RunnerJob.labelValue(text) == text, !text.isEmpty else {
            fail(
                key,
                "'\(text)' is not a valid label: at most 63 of A-Z a-z 0-9 . _ -, starting and ending alphanumeric"
            )
            return nil
        }
        return text
    }

    mutating func labelMatcher() -> LabelMatcher {
        do {
            return try LabelMatcher(parsing: environment["LABEL_MATCHERS"])
        } catch {
            fail("LABEL_MATCHERS", error.description)
            return .selfHosted
        }
    }

    mutating func repositories() -> [RepositoryRegistry.Repository] {
        let (repositories, invalid) = RepositoryRegistry.parse(environment["REPOSITORIES"])
        if !invalid.isEmpty {
            fail("REPOSITORIES", "'\(invalid.joined(separator: "', '"))' is not owner/repo")
        }
        return repositories
    }

    mutating func logLevel() -> Logger.Level {
        guard let text = value("LOG_LEVEL") else { return .info }
        guard let level = Logger.Level(rawValue: text.asciiLowercased) else {
            let allowed = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
            fail("LOG_LEVEL", "'\(text)' is not one of \(allowed)")
            return .info
        }
        return level
    }
}

/// RFC 1123 label: what Kubernetes accepts for namespace names.
func isDNSLabel(_ text: String) -> Bool {
    let bytes = Array(text.utf8)
    guard !bytes.isEmpty, bytes.count <= 63 else { return false }
    let allowed = bytes.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }
    return allowed && bytes.first != 45 && bytes.last != 45
}
