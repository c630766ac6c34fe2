#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `metav1.Status`, which the API server returns for every failure (and for a successful DELETE).
package struct Status: Decodable, Sendable, Equatable {
    package var status: String?
    package var message: String?
    /// `AlreadyExists`, `Invalid`, `Forbidden`, `NotFound`, `Unauthorized`, `Conflict`, `TooManyRequests`, …
    package var reason: String?
    package var details: Details?
    package var code: Int?

    package struct Details: Decodable, Sendable, Equatable {
        package var name: String?
        package var group: String?
        package var kind: String?
        package var causes: [Cause]?
        package var retryAfterSeconds: Int?
    }

    package struct Cause: Decodable, Sendable, Equatable {
        package var reason: String?
        package var message: String?
        package var field: String?
    }

    /// Parses a Status body; nil when the body is something else (a proxy's HTML page, say).
    package static func parse(_ body: [UInt8]) -> Status? {
        guard let status = try? JSONDecoder().decode(Status.self, from: Data(body)),
            status.reason != nil || status.message != nil
        else { return nil }
        return status
    }
}

/// A failed Kubernetes call: which verb on which resource, and what the API server said.
package struct KubernetesAPIError: Error, CustomStringConvertible, Sendable, Equatable {
    package enum Kind: Sendable, Equatable {
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

    package var kind: Kind
    /// `create`, `get`, `list`, `delete`.
    package var verb: String
    /// `jobs.batch`, `secrets`.
    package var resource: String
    package var namespace: String
    package var status: Int?
    package var message: String
    /// `field: message` for each cause of a 422.
    package var causes: [String] = []
    /// For 429 (and some 5xx): how long the API server asked to wait (`Retry-After`, `details.retryAfterSeconds`).
    package var retryAfterSeconds: Int? = nil

    package init(
        kind: Kind,
        verb: String,
        resource: String,
        namespace: String,
        status: Int? = nil,
        message: String,
        causes: [String] = [],
        retryAfterSeconds: Int? = nil
    ) {
        self.kind = kind
        self.verb = verb
        self.resource = resource
        self.namespace = namespace
        self.status = status
        self.message = message
        self.causes = causes
        self.retryAfterSeconds = retryAfterSeconds
    }

    package var isTransient: Bool { kind == .unavailable || kind == .transport }

    package var description: String {
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
