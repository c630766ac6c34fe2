/// A webhook GitHub delivers through, as the headers of a delivery name it (`X-GitHub-Hook-ID`,
/// `X-GitHub-Hook-Installation-Target-Type`): where its deliveries are listed and redelivered.
package enum WebhookHook: Sendable, Hashable, CustomStringConvertible {
    /// A repository's hook: `/repos/{owner}/{repo}/hooks/{hook_id}/deliveries`.
    case repository(owner: String, repo: String, id: Int64)
    /// An organization's hook: `/orgs/{org}/hooks/{hook_id}/deliveries`.
    case organization(String, id: Int64)
    /// The GitHub App's one hook, for every installation: `/app/hook/deliveries`, with the App's JWT.
    case app

    /// The hook a verified delivery came through: `targetType` is `repository`, `organization` or `integration`
    /// (a GitHub App); nil for any other type (a business or a Marketplace listing) or without a hook id.
    package init?(targetType: String?, hookID: String?, owner: String, repo: String) {
        switch targetType?.lowercased() {
        case "integration": self = .app
        case "repository":
            guard let id = hookID.flatMap({ Int64($0) }) else { return nil }
            self = .repository(owner: owner, repo: repo, id: id)
        case "organization":
            guard let id = hookID.flatMap({ Int64($0) }) else { return nil }
            self = .organization(owner, id: id)
        default: return nil
        }
    }

    package var description: String {
        switch self {
        case .repository(let owner, let repo, let id): "repository \(owner)/\(repo) hook \(id)"
        case .organization(let org, let id): "organization \(org) hook \(id)"
        case .app: "the App's hook"
        }
    }
}

/// One delivery of a hook, as `GET …/hooks/{hook_id}/deliveries` lists it.
package struct HookDelivery: Sendable, Equatable, Decodable {
    /// The delivery's id: what `POST …/deliveries/{delivery_id}/attempts` redelivers.
    package var id: Int64
    /// `X-GitHub-Delivery`: a redelivery keeps its original's.
    package var guid: String
    /// RFC 3339.
    package var deliveredAt: String
    package var redelivery: Bool
    /// `OK` for a delivery the receiver took, else what went wrong ("Invalid HTTP Response: 503", "timed out").
    package var status: String
    /// The receiver's HTTP status; 0 when there was no answer.
    package var statusCode: Int
    package var event: String
    package var action: String?
    package var installationID: Int64?
    package var repositoryID: Int64?

    package init(
        id: Int64,
        guid: String,
        deliveredAt: String,
        redelivery: Bool = false,
        status: String = "OK",
        statusCode: Int = 200,
        event: String = "workflow_job",
        action: String? = "queued",
        installationID: Int64? = nil,
        repositoryID: Int64? = nil
    ) {
        self.id = id
        self.guid = guid
        self.deliveredAt = deliveredAt
        self.redelivery = redelivery
        self.status = status
        self.statusCode = statusCode
        self.event = event
        self.action = action
        self.installationID = installationID
        self.repositoryID = repositoryID
    }

    enum CodingKeys: String, CodingKey {
        case id, guid, redelivery, status, event, action
        case deliveredAt = "delivered_at"
        case statusCode = "status_code"
        case installationID = "installation_id"
        case repositoryID = "repository_id"
    }

    /// Whether the receiver took it: a 2xx answer that GitHub recorded as `OK`.
    package var succeeded: Bool { (200..<300).contains(statusCode) && status.uppercased() == "OK" }
}

/// One page of a hook's deliveries, newest first, and the cursor of the next (nil on the last page).
package struct HookDeliveryPage: Sendable, Equatable {
    package var deliveries: [HookDelivery]
    package var nextCursor: String?

    package init(deliveries: [HookDelivery], nextCursor: String? = nil) {
        self.deliveries = deliveries
        self.nextCursor = nextCursor
    }
}
