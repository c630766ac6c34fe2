import Support

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
    ///
    /// A delivery as GitHub writes it takes the fast path (`JSONFields`: the fields used, out of a body of
    /// mostly URLs); anything else, an error included, is decoded in full, so the answer is always the full
    /// decoder's.
    package static func decode(_ body: [UInt8]) throws(WebhookPayloadError) -> WorkflowJobEvent {
        if let event = fastDecode(body) { return event }
        return try fullDecode(body)
    }

    /// `decode` by `JSONDecoder`, for any body.
    package static func fullDecode(_ body: [UInt8]) throws(WebhookPayloadError) -> WorkflowJobEvent {
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

    /// The fields `decode` reads, by their index in `fastDecode`.
    private static let fieldPaths = JSONFields.Paths([
        ["action"],
        ["workflow_job", "id"], ["workflow_job", "run_id"], ["workflow_job", "run_attempt"], ["workflow_job", "name"],
        ["workflow_job", "status"], ["workflow_job", "labels"], ["workflow_job", "runner_name"],
        ["workflow_job", "workflow_name"], ["workflow_job", "html_url"], ["workflow_job", "created_at"],
        ["repository", "name"], ["repository", "full_name"], ["repository", "owner", "login"],
        ["installation"], ["installation", "id"],
        ["workflow_job"], ["repository"], ["repository", "owner"], ["repository", "id"],
    ])

    /// The event when every field is in its plainest form (strings without escapes, integers in digits, objects
    /// where objects belong); nil sends the body to the full decoder.
    static func fastDecode(_ body: [UInt8]) -> WorkflowJobEvent? {
        guard let fields = JSONFields(body, paths: fieldPaths) else { return nil }
        /// An optional string: absent or null is nil; a string is itself; anything else is not for the fast path.
        func optional(_ index: Int) -> String?? {
            fields.isAbsentOrNull(index) ? .some(nil) : fields.string(index).map { .some($0) }
        }
        guard fields.isObject(16), fields.isObject(17), fields.isObject(18),
            let action = fields.string(0),
            let id = fields.int64(1), let runID = fields.int64(2),
            let name = fields.string(4), let status = fields.string(5), let labels = fields.strings(6),
            let runnerName = optional(7), let workflowName = optional(8), let htmlURL = optional(9),
            let createdAt = optional(10),
            let repositoryName = fields.string(11), let fullName = fields.string(12), let login = fields.string(13)
        else { return nil }
        var runAttempt: Int?
        if !fields.isAbsentOrNull(3) {
            guard let attempt = fields.int64(3), let value = Int(exactly: attempt) else { return nil }
            runAttempt = value
        }
        var repositoryID: Int64?
        if !fields.isAbsentOrNull(19) {
            guard let value = fields.int64(19) else { return nil }
            repositoryID = value
        }
        var installation: Installation?
        if !fields.isAbsentOrNull(14) {
            guard fields.isObject(14), let installationID = fields.int64(15) else { return nil }
            installation = Installation(id: installationID)
        }
        return WorkflowJobEvent(
            action: action,
            workflowJob: WorkflowJob(
                id: id,
                runID: runID,
                runAttempt: runAttempt,
                name: name,
                status: status,
                labels: labels,
                runnerName: runnerName,
                workflowName: workflowName,
                htmlURL: htmlURL,
                createdAt: createdAt
            ),
            repository: Repository(
                id: repositoryID,
                name: repositoryName,
                fullName: fullName,
                owner: Repository.Owner(login: login)
            ),
            installation: installation
        )
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
