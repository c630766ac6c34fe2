#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `metav1.Status`, which the API server returns for every failure (and for a successful DELETE).
public struct Status: Decodable, Sendable, Equatable {
    public var status: String?
    public var message: String?
    /// `AlreadyExists`, `Invalid`, `Forbidden`, `NotFound`, `Unauthorized`, `Conflict`, `TooManyRequests`, …
    public var reason: String?
    public var details: Details?
    public var code: Int?

    public struct Details: Decodable, Sendable, Equatable {
        public var name: String?
        public var group: String?
        public var kind: String?
        public var causes: [Cause]?
        public var retryAfterSeconds: Int?
    }

    public struct Cause: Decodable, Sendable, Equatable {
        public var reason: String?
        public var message: String?
        public var field: String?
    }

    /// Parses a Status body; nil when the body is something else (a proxy's HTML page, say).
    public static func parse(_ body: [UInt8]) -> Status? {
        guard let status = try? JSONDecoder().decode(Status.self, from: Data(body)),
            status.reason != nil || status.message != nil
        else { return nil }
        return status
    }
}

/// A failed Kubernetes call: which verb on which resource, and what the API server said.
public struct KubernetesAPIError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// 409 AlreadyExists: an object with that name exists.
        case alreadyExists
        /// 409 Conflict (resource version).
        case conflict
        /// 422 Invalid: the object was rejected; `causes` say why.
        case invalid
        /// 403 Forbidden: RBAC (or an admission plugin) denied the verb.
        case forbidden
        /// 401: the credentials were not accepted.
        case unauthorized
        case notFound
        /// 429 or 5xx.
        case unavailable
        /// No response.
        case transport
        case unexpectedResponse
    }

    public var kind: Kind
    /// `create`, `get`, `list`, `delete`.
    public var verb: String
    /// `jobs.batch`, `secrets`.
    public var resource: String
    public var namespace: String
    public var status: Int?
    public var message: String
    /// `field: message` for each cause of a 422.
    public var causes: [String] = []
    /// For 429 (and some 5xx): how long the API server asked to wait (`Retry-After`, `details.retryAfterSeconds`).
    public var retryAfterSeconds: Int? = nil

    public var isTransient: Bool { kind == .unavailable || kind == .transport }

    public var description: String {
        var text: String
        switch kind {
        case .forbidden:
            text =
                "Kubernetes denied \(verb) \(resource) in namespace \(namespace) (check the Role bound to this service account): \(message)"
        case .invalid:
            text = "Kubernetes rejected the \(resource) as invalid: \(message)"
        case .unauthorized:
            text = "Kubernetes did not accept the credentials for \(verb) \(resource): \(message)"
        case .transport:
            text = "Kubernetes API did not answer \(verb) \(resource): \(message)"
        default:
            text =
                "Kubernetes \(verb) \(resource) in \(namespace) failed (\(status.map { String($0) } ?? "no response")): \(message)"
        }
        if !causes.isEmpty { text += " [" + causes.joined(separator: "; ") + "]" }
        return text
    }
}
