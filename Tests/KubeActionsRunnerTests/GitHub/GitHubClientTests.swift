import Foundation
import Synchronization
import Testing

@testable import GitHub
@testable import HTTPClient
@testable import Observability
@testable import Support
@testable import TestSupport

@Suite struct GitHubClientTests {
    let transport = RecordingTransport()
    let metrics = Metrics()
    let time = ManualClock()

    /// A client whose clock reads 1_700_000_000 in epoch seconds until the test advances it.
    func client(
        baseURL: String = "https://api.github.com",
        transport: RecordingTransport? = nil
    ) -> GitHubClient {
        GitHubClient(
            configuration: .init(baseURL: baseURL, token: Secret("ghp_secret")),
            transport: transport ?? self.transport,
            metrics: metrics,
            logger: LogCapture().logger(),
            clock: MonotonicClock(time, wallTimeAtStart: 1_700_000_000)
        )
    }

    /// Lists are read to their end: each `rel="next"` page in turn, under the API's base URL only.
    @Test func readsEveryPageOfAListAndNeverFollowsALinkElsewhere() async throws {
        func runners(_ ids: ClosedRange<Int>) -> String {
            #"{"total_count": 250, "runners": ["#
                + ids.map { #"{"id": \#($0), "name": "r\#($0)", "busy": false, "labels": []}"# }.joined(separator: ",")
                + "]}"
        }
        let base = "https://ghe.example.com/api/v3"
        transport.enqueue(
            200,
            runners(1...100),
            headers: [
                (
                    "link",
                    #"<\#(base)/repositories/9/actions/runners?per_page=100&page=2>; rel="next", <\#(base)/repositories/9/actions/runners?per_page=100&page=3>; rel="last""#
                )
            ]
        )
        transport.enqueue(
            200,
            runners(101...200),
            headers: [("link", #"<\#(base)/repositories/9/actions/runners?per_page=100&page=3>; rel="next""#)]
        )
        transport.enqueue(
            200,
            runners(201...250),
            headers: [("link", #"<\#(base)/repositories/9/actions/runners?per_page=100&page=1>; rel="first""#)]
        )
        let listed = try await client(baseURL: base).runners(owner: "octo", repo: "api")
        #expect(listed.map(\.id) == Array(1...250).map(Int64.init))
        #expect(
            transport.requests.map(\.url) == [
                "\(base)/repos/octo/api/actions/runners?per_page=100",
                "\(base)/repositories/9/actions/runners?per_page=100&page=2",
                "\(base)/repositories/9/actions/runners?per_page=100&page=3",
            ]
        )
        #expect(transport.requests.allSatisfy { $0.header("Authorization") == "Bearer ghp_secret" })

        // A next link to another address is not followed: the token goes nowhere else.
        transport.enqueue(
            200,
            runners(1...100),
            headers: [
                ("link", #"<https://elsewhere.example/api/v3/repositories/9/actions/runners?page=2>; rel="next""#)
            ]
        )
        let first = try await client(baseURL: base).runners(owner: "octo", repo: "web")
        #expect(first.count == 100 && transport.requests.count == 4)
    }

    @Test(
        arguments: [
            (#"<https://api.github.com/x?page=2>; rel="next""#, "/x?page=2"),
            (
                #"<https://api.github.com/x?page=1>; rel="prev", <https://api.github.com/x?page=3>; rel="next""#,
                "/x?page=3"
            ),
            (#"<https://api.github.com/x?page=3>; rel="last""#, nil),
            (#"<https://api.github.com.evil.example/x>; rel="next""#, nil),
            ("garbage", nil),
        ] as [(String, String?)]
    )
    func readsTheNextPageOfALinkHeader(link: String, next: String?) {
        #expect(GitHubClient.nextPage(link, under: "https://api.github.com") == next)
    }

    /// At most `GitHubListing.limit` items are read, however many pages GitHub offers.
    @Test func stopsReadingAtTheListLimit() async throws {
        for page in 0..<12 {
            let ids = (page * 100 + 1)...(page * 100 + 100)
            transport.enqueue(
                200,
                #"{"workflow_runs": ["# + ids.map { #"{"id": \#($0), "status": "queued"}"# }.joined(separator: ",")
                    + "]}",
                headers: [("link", #"<https://api.github.com/r?page=\#(page + 2)>; rel="next""#)]
            )
        }
        let runs = try await client().runs(owner: "o", repo: "r", status: "queued")
        #expect(runs.count == GitHubListing.limit && transport.requests.count == 10)
    }

    var exposition: String { String(decoding: metrics.exposition(), as: UTF8.self) }

    /// An answer spelled otherwise than the plainest way (an escaped slash) reads the same through the full decoder;
    /// one without the runner's id is an unexpected answer.
    @Test func readsTheJITConfigWhateverItsSpelling() async throws {
        transport.enqueue(201, #"{"runner": {"id": 23, "name": "New runner"}, "encoded_jit_config": "ab\/c"}"#)
        transport.enqueue(201, #"{"runner": {"name": "New runner"}, "encoded_jit_config": "abc"}"#)
        let request = JITConfigRequest(name: "runner-42-abcde", runnerGroupID: 1, labels: ["self-hosted"])
        let jit = try await client().generateJITConfig(owner: "octo", repo: "hello", request)
        #expect(jit.runnerID == 23 && jit.runnerName == "New runner" && jit.encodedConfig.value == "ab/c")
        let error = await #expect(throws: GitHubAPIError.self) {
            try await client().generateJITConfig(owner: "octo", repo: "hello", request)
        }
        #expect(error?.kind == .unexpectedResponse)
    }

    @Test func generatesAJITConfigWithGitHubsHeaders() async throws {
        transport.enqueue(
            201,
            try Fixtures.text("github/api/generate-jitconfig.201.json"),
            headers: [("x-ratelimit-remaining", "4321"), ("x-github-request-id", "AB:CD")]
        )
        let jit = try await client(baseURL: "https://ghe.example.com/api/v3").generateJITConfig(
            owner: "octo org",
            repo: "hello.world",
            JITConfigRequest(name: "runner-42-abcde", runnerGroupID: 1, labels: ["self-hosted", "linux"])
        )
        #expect(jit.runnerID == 23 && jit.runnerName == "New runner" && jit.encodedConfig.value == "abc123")
        let request = try #require(transport.requests.first)
        #expect(request.method == "POST")
        #expect(
            request.url
                == "https://ghe.example.com/api/v3/repos/octo%20org/hello.world/actions/runners/generate-jitconfig"
        )
        #expect(request.header("Authorization") == "Bearer ghp_secret")
        #expect(request.header("Accept") == "application/vnd.github+json")
        #expect(request.header("X-GitHub-Api-Version") == "2022-11-28")
        #expect(request.header("User-Agent") == "kube-actions-runner/\(KubeActionsRunnerVersion.current)")
        let body = try JSONSerialization.jsonObject(with: Data(request.body!)) as! [String: Any]
        #expect(body["name"] as? String == "runner-42-abcde")
        #expect(body["runner_group_id"] as? Int == 1)
        #expect(body["labels"] as? [String] == ["self-hosted", "linux"])
        #expect(body["work_folder"] as? String == "_work")
        #expect(
            exposition.contains(
                #"github_api_requests_total{endpoint="POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig",status="201"} 1"#
            )
        )
        #expect(exposition.contains(#"github_api_rate_limit_remaining{owner=""} 4321"#))
        #expect(!"\(jit)".contains("abc123"))
    }

    @Test func readsAJobsStatus() async throws {
        transport.enqueue(200, try Fixtures.text("github/api/job.get.200.json"))
        let job = try await client().job(owner: "octo", repo: "repo", id: 399444496)
        #expect(job.id == 399444496 && job.status == "completed" && !job.isWaitingForRunner)
        #expect(transport.requests.first?.url == "https://api.github.com/repos/octo/repo/actions/jobs/399444496")
        #expect(transport.requests.first?.method == "GET")
    }

    @Test(arguments: [
        (401, #"{"message":"Bad credentials"}"#, [(String, String)](), GitHubAPIError.Kind.unauthorized),
        (404, #"{"message":"Not Found","status":"404"}"#, [], .notFound),
        (409, #"{"message":"Already exists - A runner with the name *** already exists."}"#, [], .conflict),
        (422, #"{"message":"Invalid request.\n\n\"runner_group_id\" wasn't supplied."}"#, [], .validation),
        (
            403, #"{"message":"Resource not accessible by personal access token"}"#,
            [("x-accepted-github-permissions", "administration=write")], .forbidden
        ),
        (502, "<html>bad gateway</html>", [], .server),
    ])
    func mapsErrorAnswers(status: Int, body: String, headers: [(String, String)], kind: GitHubAPIError.Kind) async {
        transport.enqueue(status, body, headers: headers)
        do {
            _ = try await client().deleteRunner(owner: "o", repo: "r", runnerID: 5)
            Issue.record("expected an error")
        } catch {
            #expect(error.kind == kind)
            #expect(error.status == status)
            #expect(error.endpoint == "DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}")
            if status == 403 { #expect(error.description.contains("the token needs administration=write")) }
            if status == 502 { #expect(error.message == "HTTP 502" && error.isTransient) }
        }
    }

    @Test func stopsCallingWhileRateLimitedUntilTheReset() async throws {
        transport.enqueue(
            403,
            #"{"message":"API rate limit exceeded for user ID 1."}"#,
            headers: [("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1700000600")]
        )
        let github = client()
        do {
            _ = try await github.job(owner: "o", repo: "r", id: 1)
            Issue.record("expected a rate limit")
        } catch {
            // The reset is a whole second of GitHub's clock: the pause lasts through it.
            #expect(error.kind == .rateLimited && error.retryAt == 1_700_000_601)
            #expect(error.description.contains("rate limited until 2023-11-14T22:23:21Z"))
        }
        #expect(exposition.contains(#"github_api_rate_limit_remaining{owner=""} 0.0"# + "\n"))
        // Before the reset, and within its second: refused without a request.
        await #expect(throws: GitHubAPIError.self) { try await github.job(owner: "o", repo: "r", id: 1) }
        time.advance(by: .milliseconds(600_900))
        await #expect(throws: GitHubAPIError.self) { try await github.job(owner: "o", repo: "r", id: 1) }
        #expect(transport.requests.count == 1)
        // After it: calls again.
        time.advance(by: .milliseconds(100))
        transport.enqueue(200, try Fixtures.text("github/api/job.get.200.json"))
        _ = try await github.job(owner: "o", repo: "r", id: 1)
        #expect(transport.requests.count == 2)
    }

    @Test func honoursRetryAfterOnSecondaryLimits() async {
        transport.enqueue(
            429,
            #"{"message":"You have exceeded a secondary rate limit."}"#,
            headers: [("retry-after", "30")]
        )
        let error = await #expect(throws: GitHubAPIError.self) {
            _ = try await client().job(owner: "o", repo: "r", id: 1)
        }
        #expect(error?.kind == .rateLimited && error?.retryAt == 1_700_000_030)
    }

    @Test func countsARetryAfterWindowFromTheAnswerNotFromTheRequest() async throws {
        let time = self.time
        let limited = HTTPClientResponse(
            status: 429,
            headers: [(name: "retry-after", value: "30")],
            body: Array(#"{"message":"You have exceeded a secondary rate limit."}"#.utf8)
        )
        // The request leaves at 1_700_000_000; its answer comes 10 s later (a slow call).
        let slow = RecordingTransport([
            { _ in
                time.advance(by: .seconds(10))
                return .success(limited)
            }
        ])
        let delayed = client(transport: slow)
        let error = await #expect(throws: GitHubAPIError.self) { try await delayed.job(owner: "o", repo: "r", id: 1) }
        #expect(error?.retryAt == 1_700_000_040)
        time.advance(by: .seconds(25))  // 35 s after the request, 25 s after the answer: still inside the window
        await #expect(throws: GitHubAPIError.self) { try await delayed.job(owner: "o", repo: "r", id: 1) }
        #expect(slow.requests.count == 1)
        time.advance(by: .seconds(6))
        slow.enqueue(200, try Fixtures.text("github/api/job.get.200.json"))
        _ = try await delayed.job(owner: "o", repo: "r", id: 1)
        #expect(slow.requests.count == 2)
    }

    @Test func stopsAfterTheLastRequestOfTheWindowSucceeded() async throws {
        transport.enqueue(
            200,
            try Fixtures.text("github/api/job.get.200.json"),
            headers: [("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1700000100")]
        )
        let github = client()
        _ = try await github.job(owner: "o", repo: "r", id: 1)
        await #expect(throws: GitHubAPIError.self) { try await github.job(owner: "o", repo: "r", id: 1) }
        #expect(transport.requests.count == 1)
    }

    @Test func reportsTransportFailuresAsNoResponse() async {
        transport.enqueue(HTTPTransportError(kind: .timeout, message: "Timeout was reached"))
        let error = await #expect(throws: GitHubAPIError.self) {
            _ = try await client().job(owner: "o", repo: "r", id: 1)
        }
        #expect(error?.kind == .transport && error?.status == nil && error?.isTransient == true)
        #expect(error?.metricLabel == "transport")
        #expect(
            exposition.contains(
                #"github_api_requests_total{endpoint="GET /repos/{owner}/{repo}/actions/jobs/{job_id}",status="transport"} 1"#
            )
        )
    }

    @Test func rejectsUndocumentedSuccessBodies() async {
        transport.enqueue(201, #"{"runner":{"id":1}}"#)
        await #expect(throws: GitHubAPIError.self) {
            try await client().generateJITConfig(
                owner: "o",
                repo: "r",
                JITConfigRequest(name: "n", runnerGroupID: 1, labels: ["x"])
            )
        }
    }

    @Test func listsWithConditionalRequestsSoUnchangedListsCostNothing() async throws {
        let runs = #"{"total_count":1,"workflow_runs":[{"id":7,"status":"queued"}]}"#
        transport.enqueue(200, runs, headers: [("ETag", #"W/"abc""#), ("x-ratelimit-remaining", "4000")])
        transport.enqueue(304, "", headers: [("ETag", #"W/"abc""#), ("x-ratelimit-remaining", "4000")])
        let github = client()
        #expect(
            try await github.runs(owner: "o", repo: "r", status: "queued") == [WorkflowRun(id: 7, status: "queued")]
        )
        #expect(
            try await github.runs(owner: "o", repo: "r", status: "queued") == [WorkflowRun(id: 7, status: "queued")]
        )
        let requests = transport.requests
        #expect(
            requests.map(\.url)
                == Array(
                    repeating: "https://api.github.com/repos/o/r/actions/runs?status=queued&per_page=100",
                    count: 2
                )
        )
        #expect(requests[0].header("If-None-Match") == nil)
        #expect(requests[1].header("If-None-Match") == #"W/"abc""#)
        #expect(github.rateLimitRemaining == 4000)
    }
}

/// GHES serves the API under `https://HOST/api/v3`: every call goes under that prefix (a trailing slash or not),
/// and so do the pages a list is read on.
@Suite struct GitHubEnterpriseServerTests {
    static let base = "https://ghe.example.com/api/v3"

    /// Each call of `GitHubAPI`, and the path it must reach under the prefix.
    static let calls: [(String, @Sendable (GitHubClient) async throws -> Void)] = [
        ("/repos/octo/api/actions/jobs/7", { _ = try await $0.job(owner: "octo", repo: "api", id: 7) }),
        (
            "/repos/octo/api/actions/runs?status=queued&per_page=100",
            { _ = try await $0.runs(owner: "octo", repo: "api", status: "queued") }
        ),
        (
            "/repos/octo/api/actions/runs/9/jobs?filter=latest&per_page=100",
            { _ = try await $0.jobs(owner: "octo", repo: "api", runID: 9) }
        ),
        ("/repos/octo/api/actions/runners?per_page=100", { _ = try await $0.runners(owner: "octo", repo: "api") }),
        ("/repos/octo/api/actions/runners/5", { _ = try await $0.runner(owner: "octo", repo: "api", id: 5) }),
        ("/repos/octo/api/actions/runners/5", { try await $0.deleteRunner(owner: "octo", repo: "api", runnerID: 5) }),
        (
            "/repos/octo/api/actions/runners/generate-jitconfig",
            {
                _ = try await $0.generateJITConfig(
                    owner: "octo",
                    repo: "api",
                    JITConfigRequest(name: "n", runnerGroupID: 1, labels: ["x"])
                )
            }
        ),
        (
            "/orgs/octo/actions/runners?per_page=100",
            { _ = try await $0.runners(owner: "octo", repo: "api", scope: .organization) }
        ),
        (
            "/orgs/octo/actions/runners/5",
            { _ = try await $0.runner(owner: "octo", repo: "api", scope: .organization, id: 5) }
        ),
        (
            "/orgs/octo/actions/runners/5",
            { try await $0.deleteRunner(owner: "octo", repo: "api", scope: .organization, runnerID: 5) }
        ),
        (
            "/orgs/octo/actions/runners/generate-jitconfig",
            {
                _ = try await $0.generateJITConfig(
                    owner: "octo",
                    repo: "api",
                    scope: .organization,
                    JITConfigRequest(name: "n", runnerGroupID: 3, labels: ["x"])
                )
            }
        ),
        ("/orgs/octo/actions/runner-groups?per_page=100", { _ = try await $0.runnerGroups(organization: "octo") }),
    ]

    @Test(arguments: 0..<calls.count, [base, base + "/"])
    func sendsEveryCallUnderThePrefix(index: Int, baseURL: String) async throws {
        let (path, call) = Self.calls[index]
        let transport = RoutingTransport { request in
            let body =
                request.url.contains("generate-jitconfig")
                ? #"{"runner":{"id":23,"name":"n"},"encoded_jit_config":"abc"}"#
                : request.url.contains("/runners/5")
                    ? #"{"id":5,"name":"r","labels":[]}"#
                    : request.url.contains("/jobs/7")
                        ? #"{"id":7,"status":"queued","labels":[]}"#
                        : #"{"total_count":0,"runners":[],"workflow_runs":[],"jobs":[],"runner_groups":[]}"#
            return .json(request.method == "DELETE" ? 204 : 200, body)
        }
        let github = GitHubClient(
            configuration: .init(baseURL: baseURL, token: Secret("ghp_secret")),
            transport: transport,
            metrics: nil,
            logger: LogCapture().logger()
        )
        try await call(github)
        #expect(transport.requests.map(\.url) == [Self.base + path])
    }

    /// The organization's runner calls carry the route templates of the organization endpoints, and a JIT config
    /// for an organization runner names the group.
    @Test func registersOrganizationRunnersInTheirGroup() async throws {
        let transport = RecordingTransport()
        transport.enqueue(201, #"{"runner":{"id":23,"name":"runner-1-abcde"},"encoded_jit_config":"abc"}"#)
        transport.enqueue(404, #"{"message":"Not Found"}"#)
        let metrics = Metrics()
        let github = GitHubClient(
            configuration: .init(baseURL: Self.base, token: Secret("ghp_secret")),
            transport: transport,
            metrics: metrics,
            logger: LogCapture().logger()
        )
        let jit = try await github.generateJITConfig(
            owner: "octo-org",
            repo: "api",
            scope: .organization,
            JITConfigRequest(name: "runner-1-abcde", runnerGroupID: 3, labels: ["self-hosted"])
        )
        #expect(jit.runnerID == 23)
        let body = try JSONSerialization.jsonObject(with: Data(transport.requests[0].body!)) as! [String: Any]
        #expect(body["runner_group_id"] as? Int == 3)
        #expect(try await github.runner(owner: "octo-org", repo: "api", scope: .organization, id: 23) == nil)
        let exposition = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(
            exposition.contains(
                #"github_api_requests_total{endpoint="POST /orgs/{org}/actions/runners/generate-jitconfig",status="201"} 1"#
            )
        )
        #expect(
            exposition.contains(
                #"github_api_requests_total{endpoint="GET /orgs/{org}/actions/runners/{runner_id}",status="404"} 1"#
            )
        )
    }

    /// Runner groups are read on every page under the prefix; a name resolves exactly, else ignoring case, else
    /// fails listing the groups there are.
    @Test func resolvesARunnerGroupByNameOverEveryPage() async throws {
        let transport = RecordingTransport()
        for _ in 0..<4 {
            transport.enqueue(
                200,
                #"{"total_count":3,"runner_groups":[{"id":1,"name":"Default","visibility":"all","default":true},{"id":2,"name":"gpu","visibility":"selected","default":false}]}"#,
                headers: [
                    ("link", #"<\#(Self.base)/organizations/9/actions/runner-groups?per_page=100&page=2>; rel="next""#)
                ]
            )
            transport.enqueue(200, #"{"total_count":3,"runner_groups":[{"id":7,"name":"Kubernetes Runners"}]}"#)
        }
        let github = GitHubClient(
            configuration: .init(baseURL: Self.base, token: Secret("ghp_secret")),
            transport: transport,
            metrics: nil,
            logger: LogCapture().logger()
        )
        #expect(try await github.runnerGroupID(named: "Kubernetes Runners", organization: "octo") == 7)
        #expect(
            transport.requests.map(\.url).last
                == "\(Self.base)/organizations/9/actions/runner-groups?per_page=100&page=2"
        )
        #expect(try await github.runnerGroupID(named: "GPU", organization: "octo") == 2)
        #expect(try await github.runnerGroupID(named: "Default", organization: "octo") == 1)
        let error = await #expect(throws: GitHubAPIError.self) {
            try await github.runnerGroupID(named: "arm64", organization: "octo")
        }
        #expect(error?.kind == .validation)
        #expect(
            error?.message.contains(#"no runner group named "arm64" (it has: Default, gpu, Kubernetes Runners)"#)
                == true
        )
    }
}
