import Foundation
import Synchronization
import Testing

@testable import HTTPServer
@testable import Observability
@testable import Runners
@testable import Support
@testable import TestSupport
@testable import Webhook

@Suite struct RepositoryAllowListTests {
    @Test(arguments: [
        // owners, repositories, owner, repo, allowed
        ([String](), [String](), "anyone", "anything", true),
        (["octo-org"], [], "Octo-Org", "api", true),
        (["octo-org"], [], "octo-org-fork", "api", false),
        (["octo-*"], [], "octo-labs", "x", true),
        (["octo-*"], [], "octo", "x", false),
        (["team-??"], [], "team-42", "x", true),
        (["team-??"], [], "team-420", "x", false),
        ([], ["hubot/web"], "HUBOT", "Web", true),
        ([], ["hubot/web"], "hubot", "web-2", false),
        ([], ["hubot/*"], "hubot", "anything", true),
        ([], ["*/infra-*"], "someone", "infra-live", true),
        ([], ["*/infra-*"], "someone", "app", false),
        (["octo-org"], ["hubot/web"], "hubot", "web", true),
        (["octo-org"], ["hubot/web"], "hubot", "api", false),
        (["*"], [], "anyone", "x", true),
        (["a*b*c"], [], "aXXbYYc", "x", true),
        (["a*b*c"], [], "aXXbYY", "x", false),
    ])
    func matchesOwnersAndRepositoriesByGlobIgnoringCase(
        owners: [String],
        repositories: [String],
        owner: String,
        repo: String,
        allowed: Bool
    ) throws {
        let list = try RepositoryAllowList(owners: owners, repositories: repositories)
        #expect(list.allows(owner: owner, repository: repo) == allowed)
    }

    @Test(arguments: [
        ([""], [String](), "ALLOWED_OWNERS"),
        (["octo/api"], [], "ALLOWED_OWNERS"),
        ([], ["octo"], "ALLOWED_REPOSITORIES"),
        ([], ["octo/api/x"], "ALLOWED_REPOSITORIES"),
        ([], ["/api"], "ALLOWED_REPOSITORIES"),
    ])
    func refusesPatternsThatCannotMatchAnything(owners: [String], repositories: [String], setting: String) {
        #expect {
            try RepositoryAllowList(owners: owners, repositories: repositories)
        } throws: { error in
            "\(error)".hasPrefix(setting + ": ")
        }
    }
}

/// The allow-list in the handler: a correctly signed delivery from elsewhere is answered 403 and counted, and
/// nothing is provisioned or noted.
@Suite struct WebhookAllowListTests {
    let provisioner = RecordingProvisioner()
    let metrics = Metrics()
    let logs = LogCapture()
    let noted = Notes()

    func handler(_ allowList: RepositoryAllowList) -> WebhookHandler {
        let noted = self.noted
        return WebhookHandler(
            verifier: SignatureVerifier(secrets: [Secret(Fixtures.secret)]),
            matcher: .selfHosted,
            deliveries: DeliveryLog(),
            provisioner: provisioner,
            metrics: metrics,
            logger: logs.logger(),
            onVerifiedRepository: { owner, repo in noted.append("repo \(owner)/\(repo)") },
            allowList: allowList,
            onVerifiedInstallation: { owner, id in noted.append("installation \(owner) \(id)") }
        )
    }

    /// The fixture delivery (Octocoders/Hello-World, an App's: installation 3456996), queued with `self-hosted`, from
    /// `installation` when given.
    func delivery(installation: Int? = nil) throws -> HTTPRequest {
        var json =
            try JSONSerialization.jsonObject(with: Data(try Fixtures.bytes("github/workflow_job.queued.payload.json")))
            as! [String: Any]
        var job = json["workflow_job"] as! [String: Any]
        job["labels"] = ["self-hosted"]
        json["workflow_job"] = job
        if let installation { json["installation"] = ["id": installation, "node_id": "MDIz"] }
        let body = Array(try JSONSerialization.data(withJSONObject: json))
        return HTTPRequest(
            method: "POST",
            target: "/webhook",
            headers: HTTPHeaders(deliveryHeaders(event: "workflow_job", body: body).map { (name: $0.0, value: $0.1) }),
            body: body
        )
    }

    @Test func answersASignedDeliveryFromElsewhere403AndDoesNothing() async throws {
        let response = await handler(try RepositoryAllowList(owners: ["octo-org"], repositories: ["hubot/*"]))
            .handle(try delivery(installation: 42))
        #expect(response.status == 403)
        let body = try JSONSerialization.jsonObject(with: Data(response.body)) as! [String: Any]
        #expect(body["outcome"] as? String == "not_allowed")
        #expect(provisioner.requests.isEmpty && noted.all.isEmpty)
        let exposition = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(exposition.contains(#"webhook_outcomes_total{outcome="not_allowed"} 1"#))
        // Its names are the sender's to choose: no series of their own.
        #expect(exposition.contains(#"webhook_requests_total{status="403",owner="",repo=""} 1"#))
        #expect(!exposition.contains("Octocoders"))
        let lines = logs.all.filter { $0.contains(#""outcome":"not_allowed""#) }
        #expect(lines.count == 1 && lines[0].contains(#""repo":"Octocoders/Hello-World""#))
        #expect(lines[0].contains(#""level":"warning""#))
    }

    @Test func provisionsAnAllowedDeliveryAndNotesItsInstallation() async throws {
        let response = await handler(try RepositoryAllowList(owners: [], repositories: ["octocoders/hello-*"]))
            .handle(try delivery(installation: 42))
        #expect(response.status == 200 && provisioner.requests.count == 1)
        #expect(noted.all == ["installation Octocoders 42", "repo Octocoders/Hello-World"])
    }

    @Test func allowsEveryoneByDefault() async throws {
        let response = await handler(.everyone).handle(try delivery())
        #expect(response.status == 200 && provisioner.requests.count == 1)
        #expect(noted.all == ["installation Octocoders 3456996", "repo Octocoders/Hello-World"])
    }
}

/// What the handler's callbacks were told.
final class Notes: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}
