#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The parts of a `workflow_job` delivery this service uses. Unknown fields are ignored (GitHub adds fields).
public struct WorkflowJobEvent: Decodable, Sendable, Equatable {
    public var action: String
    public var workflowJob: WorkflowJob
    public var repository: Repository
    public var installation: Installation?

    public struct WorkflowJob: Decodable, Sendable, Equatable {
        public var id: Int64
        public var runID: Int64
        public var runAttempt: Int?
        public var name: String
        public var status: String
        public var labels: [String]
        public var runnerName: String?
        public var workflowName: String?
        public var htmlURL: String?

        enum CodingKeys: String, CodingKey {
            case id
            case runID = "run_id"
            case runAttempt = "run_attempt"
            case name
            case status
            case labels
            case runnerName = "runner_name"
            case workflowName = "workflow_name"
            case htmlURL = "html_url"
        }
    }

    public struct Repository: Decodable, Sendable, Equatable {
        public var name: String
        public var fullName: String
        public var owner: Owner

        public struct Owner: Decodable, Sendable, Equatable {
            public var login: String
        }

        enum CodingKeys: String, CodingKey {
            case name
            case fullName = "full_name"
            case owner
        }
    }

    public struct Installation: Decodable, Sendable, Equatable {
        public var id: Int64
    }

    enum CodingKeys: String, CodingKey {
        case action
        case workflowJob = "workflow_job"
        case repository
        case installation
    }

    /// Decodes a delivery body; the error says which field was wrong, never echoes the payload.
    public static func decode(_ body: [UInt8]) throws(WebhookPayloadError) -> WorkflowJobEvent {
        do {
            return try JSONDecoder().decode(WorkflowJobEvent.self, from: Data(body))
        } catch let DecodingError.keyNotFound(key, context) {
            throw WebhookPayloadError(reason: "missing field \(path(context.codingPath + [key]))")
        } catch let DecodingError.typeMismatch(_, context) {
            throw WebhookPayloadError(reason: "wrong type at \(path(context.codingPath))")
        } catch let DecodingError.valueNotFound(_, context) {
            throw WebhookPayloadError(reason: "null at \(path(context.codingPath))")
        } catch {
            throw WebhookPayloadError(reason: "not valid JSON")
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}

/// A signed delivery whose body is not what GitHub sends.
public struct WebhookPayloadError: Error, Equatable, CustomStringConvertible {
    public var reason: String
    public var description: String { "invalid payload: \(reason)" }
}

/// Just the `action` of any event, read before deciding whether the rest matters.
struct EventAction: Decodable {
    var action: String?
}
