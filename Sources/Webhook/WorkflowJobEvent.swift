#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The parts of a `workflow_job` delivery this service uses. Unknown fields are ignored (GitHub adds fields).
package struct WorkflowJobEvent: Decodable, Sendable, Equatable {
    package var action: String
    package var workflowJob: WorkflowJob
    package var repository: Repository
    package var installation: Installation?

    package struct WorkflowJob: Decodable, Sendable, Equatable {
        package var id: Int64
        package var runID: Int64
        package var runAttempt: Int?
        package var name: String
        package var status: String
        package var labels: [String]
        package var runnerName: String?
        package var workflowName: String?
        package var htmlURL: String?
        /// RFC 3339; when GitHub queued the job.
        package var createdAt: String?

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
            case createdAt = "created_at"
        }
    }

    package struct Repository: Decodable, Sendable, Equatable {
        /// GitHub's id of the repository: what an organization's or an App's hook lists deliveries by.
        package var id: Int64?
        package var name: String
        package var fullName: String
        package var owner: Owner

        package struct Owner: Decodable, Sendable, Equatable {
            package var login: String
        }

        enum CodingKeys: String, CodingKey {
            case id, name
            case fullName = "full_name"
            case owner
        }
    }

    package struct Installation: Decodable, Sendable, Equatable {
        package var id: Int64
    }

    enum CodingKeys: String, CodingKey {
        case action
        case workflowJob = "workflow_job"
        case repository
        case installation
    }

    /// Decodes a delivery body; the error says which field was wrong, never echoes the payload.
    package static func decode(_ body: [UInt8]) throws(WebhookPayloadError) -> WorkflowJobEvent {
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
package struct WebhookPayloadError: Error, Equatable, CustomStringConvertible {
    package var reason: String
    package var description: String { "invalid payload: \(reason)" }
}

/// Just the `action` of any event, read before deciding whether the rest matters.
struct EventAction: Decodable {
    var action: String?
}
