import Logging
import Observability
import Runners
import Support
import Webhook

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
    /// Reads and validates the configuration: every setting of `Configuration.settings`, then the rules between
    /// them. The environment is a parameter: tests never touch the process's.
    package init(environment: [String: String], files: some FileReading = LocalFiles()) throws(ConfigurationErrors) {
        var reader = SettingsReader(environment: environment, files: files)
        let configuration = Self.read(with: &reader)
        guard reader.errors.isEmpty else {
            throw ConfigurationErrors(errors: reader.errors)
        }
        self = configuration
    }

    /// Reads every setting, in the table's order, then checks the rules between them; problems stay in the reader.
    static func read(with reader: inout SettingsReader) -> Configuration {
        var configuration = Configuration.unread
        for setting in settings {
            setting.read?(&reader, &configuration)
        }
        checkRulesBetweenSettings(&configuration, &reader)
        return configuration
    }

    /// What parsing starts from; every setting overwrites its part (a required one reports an error when unset).
    private static var unread: Configuration {
        Configuration(
            webhookSecret: Secret(""),
            previousWebhookSecret: nil,
            githubToken: nil,
            githubAPIURL: "",
            githubCAFile: nil,
            runnerMode: .standard,
            runnerImage: "",
            dindImage: "",
            dindMTU: nil,
            namespace: Defaults.namespace,
            namespaceIsExplicit: false,
            labelMatcher: .selfHosted,
            listenAddress: "",
            port: 0,
            metricsPort: nil,
            jobTTLSeconds: 0,
            runnerGroupID: 0,
            maxBodyBytes: 0,
            maxConnections: 0,
            maxInflightBodyBytes: 0,
            logLevel: .info,
            logFormat: .json,
            dryRun: false,
            allowCleartextCredentials: false,
            reconcileInterval: .zero,
            reconcileGrace: .zero,
            runnerIdleTimeout: .zero,
            repositories: [],
            rateLimitReserve: 0,
            identity: ""
        )
    }
}

/// Reads typed values from the environment and collects problems instead of stopping at the first.
///
/// Every lookup goes through `value(_:)` or `raw(_:)`, which remember the names looked up, so a test can check that
/// the service reads no variable the settings do not document.
struct SettingsReader {
    private let environment: [String: String]
    let files: any FileReading
    private(set) var errors: [ConfigurationError] = []
    /// Every variable looked up so far, set or not.
    private(set) var lookedUp: Set<String> = []

    init(environment: [String: String], files: any FileReading) {
        self.environment = environment
        self.files = files
    }

    /// The variable exactly as set, or nil.
    mutating func raw(_ key: String) -> String? {
        lookedUp.insert(key)
        return environment[key]
    }

    /// A set, non-blank value; blank counts as unset (templated manifests often render empty values).
    mutating func value(_ key: String) -> String? {
        guard let raw = raw(key) else { return nil }
        let trimmed = raw.trimmingOWS()
        return trimmed.isEmpty ? nil : trimmed
    }

    mutating func fail(_ key: String, _ message: String) {
        errors.append(ConfigurationError(key: key, message: message))
    }

    /// Whether a problem was reported about any of these variables.
    func reported(about keys: String...) -> Bool {
        errors.contains { keys.contains($0.key) }
    }

    /// - Parameter multiline: a PEM key, whose lines may also come as literal `\n` in a variable's one line.
    mutating func secret(_ key: String, required: Bool, multiline: Bool = false) -> Secret? {
        let fileKey = key + "_FILE"
        let direct = raw(key).flatMap { $0.isEmpty ? nil : $0 }
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
        if multiline {
            let lines = secret.contains("\n") ? secret : secret.replacing("\\n", with: "\n")
            return Secret(lines.replacing("\r\n", with: "\n"))
        }
        if secret.utf8.contains(where: { $0 == 0x0A || $0 == 0x0D }) {
            fail(key, "must be a single line")
            return nil
        }
        return Secret(secret)
    }

    mutating func existingFile(_ key: String) -> String? {
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

    mutating func namespace(_ key: String) -> String {
        if let text = value(key) {
            guard isDNSLabel(text) else {
                fail(
                    key,
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

    /// The name of a Kubernetes object (a DNS subdomain: lowercase, digits, `-` and `.`, at most 253); nil when
    /// unset or invalid (reported).
    mutating func objectName(_ key: String) -> String? {
        guard let text = value(key) else { return nil }
        guard isDNSSubdomain(text) else {
            fail(
                key,
                "'\(text)' is not a valid Kubernetes object name (lowercase DNS subdomain, at most 253 characters)"
            )
            return nil
        }
        return text
    }

    /// A Kubernetes quantity of bytes such as `1Gi`, `500M` or `1073741824`; nil when unset or invalid (reported).
    mutating func quantity(_ key: String) -> String? {
        guard let text = value(key) else { return nil }
        guard isByteQuantity(text) else {
            fail(
                key,
                "'\(text)' is not a size: a whole number with an optional suffix Ki, Mi, Gi, Ti, Pi, k, M, G, T or P"
                    + " (e.g. 10Gi)"
            )
            return nil
        }
        return text
    }

    /// A comma-separated list; empty items dropped.
    mutating func list(_ key: String) -> [String] {
        (value(key) ?? "").split(separator: ",").map { String($0).trimmingOWS() }.filter { !$0.isEmpty }
    }

    mutating func labelMatcher(_ key: String) -> LabelMatcher {
        do {
            return try LabelMatcher(parsing: raw(key))
        } catch {
            fail(key, error.description)
            return .selfHosted
        }
    }

    mutating func repositories(_ key: String) -> [RepositoryRegistry.Repository] {
        let (repositories, invalid) = RepositoryRegistry.parse(raw(key))
        if !invalid.isEmpty {
            fail(key, "'\(invalid.joined(separator: "', '"))' is not owner/repo")
        }
        return repositories
    }
}

/// RFC 1123 label: what Kubernetes accepts for namespace names.
func isDNSLabel(_ text: String) -> Bool {
    let bytes = Array(text.utf8)
    guard !bytes.isEmpty, bytes.count <= 63 else { return false }
    let allowed = bytes.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }
    return allowed && bytes.first != 45 && bytes.last != 45
}

/// A DNS subdomain (RFC 1123) as Kubernetes names most objects: dot-separated DNS labels, at most 253 characters.
func isDNSSubdomain(_ text: String) -> Bool {
    guard !text.isEmpty, text.utf8.count <= 253 else { return false }
    return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isDNSLabel(String($0)) }
}

/// Whole bytes, or a whole number with a binary or decimal suffix: the forms a storage request is written in.
func isByteQuantity(_ text: String) -> Bool {
    let suffixes = ["Ki", "Mi", "Gi", "Ti", "Pi", "k", "M", "G", "T", "P"]
    var digits = Substring(text)
    if let suffix = suffixes.first(where: { text.hasSuffix($0) }) {
        digits = digits.dropLast(suffix.count)
    }
    guard !digits.isEmpty, digits.utf8.count <= 18, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
        return false
    }
    return digits.utf8.contains { $0 != 48 }
}
