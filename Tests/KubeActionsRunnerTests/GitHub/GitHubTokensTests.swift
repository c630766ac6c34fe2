import Foundation
import Synchronization
import Testing

@testable import GitHub
@testable import HTTPClient
@testable import Observability
@testable import Support
@testable import TestSupport

@Suite struct GitHubTokensTests {
    /// The original design's `GITHUB_TOKENS`: a JSON array of owner/token objects.
    @Test func readsTheOriginalDesignsTokenList() throws {
        let tokens = try GitHubTokens.parse(
            #"[{"owner":"octo-org","token":"ghp_octo"}, {"owner": "Hubot", "token": " github_pat_hubot\n"}]"#
        )
        #expect(
            tokens == [
                .init(owner: "octo-org", token: Secret("ghp_octo")),
                .init(owner: "Hubot", token: Secret("github_pat_hubot")),
            ]
        )
        #expect(try GitHubTokens.parse("[]").isEmpty)
    }

    @Test(arguments: [
        ("ghp_secret_1", "GITHUB_TOKENS must be a JSON array"),
        (#"{"owner":"o","token":"ghp_secret_1"}"#, "GITHUB_TOKENS must be a JSON array"),
        (#"[{"owner":"","token":"ghp_secret_1"}]"#, "GITHUB_TOKENS entry 1 has no owner"),
        (#"[{"token":"ghp_secret_1"}]"#, "GITHUB_TOKENS entry 1 has no owner"),
        (#"[{"owner":"a","token":"x"},{"owner":"b","token":""}]"#, "GITHUB_TOKENS entry 2 (owner b) has no token"),
        (
            #"[{"owner":"Octo","token":"ghp_secret_1"},{"owner":"octo","token":"ghp_secret_2"}]"#,
            "lists owner octo more"
        ),
        (#"[{"owner":"o","token":7}]"#, "GITHUB_TOKENS must be a JSON array"),
    ])
    func refusesMalformedTokenListsWithoutShowingATokenInTheError(text: String, message: String) {
        #expect {
            try GitHubTokens.parse(text)
        } throws: { error in
            let description = "\(error)"
            return description.contains(message) && !description.contains("ghp_secret")
        }
    }

    @Test func servesEachOwnerWithItsTokenAndOthersWithTheDefault() async throws {
        let tokens = GitHubTokens(
            defaultToken: Secret("ghp_default"),
            ownerTokens: [.init(owner: "Octo-Org", token: Secret("ghp_octo"))]
        )
        let octo = try await tokens.credential(owner: "octo-org", repository: "api")
        #expect(octo.authorization.value == "Bearer ghp_octo")
        #expect(octo.rateLimitKey == "token:octo-org" && octo.rateLimitOwner == "Octo-Org")
        let other = try await tokens.credential(owner: "hubot", repository: nil)
        #expect(other.authorization.value == "Bearer ghp_default" && other.rateLimitKey == "token")
        #expect(other.rateLimitOwner == "")
        #expect(tokens.knownRateLimitOwners == ["", "Octo-Org"])
        #expect(!"\(tokens)".contains("ghp_") && !"\(octo)".contains("ghp_"))

        let onlyListed = GitHubTokens(defaultToken: nil, ownerTokens: [.init(owner: "octo", token: Secret("t"))])
        let error = await #expect(throws: GitHubAPIError.self) {
            try await onlyListed.credential(owner: "stranger", repository: "r")
        }
        #expect(error?.kind == .unauthorized && error?.message.contains("stranger") == true)
        #expect(error?.message.contains("GITHUB_TOKENS") == true)
    }

    /// One token's rate limit pauses that token's calls only; the gauge has a series per token.
    @Test func pausesOnlyTheRateLimitedTokensCalls() async throws {
        let transport = RoutingTransport { request in
            if request.header("Authorization") == "Bearer ghp_octo" {
                return .json(
                    403,
                    #"{"message":"API rate limit exceeded for user ID 1."}"#,
                    headers: [("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1700000600")]
                )
            }
            return .json(
                200,
                #"{"total_count":0,"runners":[]}"#,
                headers: [("x-ratelimit-remaining", "4200")]
            )
        }
        let metrics = Metrics()
        let github = GitHubClient(
            configuration: .init(
                baseURL: "https://api.github.com",
                credentials: GitHubTokens(
                    defaultToken: Secret("ghp_default"),
                    ownerTokens: [.init(owner: "octo", token: Secret("ghp_octo"))]
                )
            ),
            transport: transport,
            metrics: metrics,
            logger: LogCapture().logger(),
            epochSeconds: { 1_700_000_000 }
        )
        let exposition = { String(decoding: metrics.exposition(), as: UTF8.self) }
        #expect(exposition().contains(#"github_api_rate_limit_remaining{owner=""} -1"#))
        #expect(exposition().contains(#"github_api_rate_limit_remaining{owner="octo"} -1"#))

        await #expect(throws: GitHubAPIError.self) { try await github.runners(owner: "octo", repo: "a") }
        let refused = await #expect(throws: GitHubAPIError.self) { try await github.runners(owner: "octo", repo: "b") }
        #expect(refused?.kind == .rateLimited && refused?.status == nil)  // not sent
        #expect(try await github.runners(owner: "hubot", repo: "c").isEmpty)
        #expect(transport.requests.count == 2)

        #expect(github.rateLimitRemaining(owner: "OCTO") == 0)
        #expect(github.rateLimitRemaining(owner: "hubot") == 4200)
        #expect(github.rateLimitRemaining(owner: "nobody") == nil)
        #expect(github.rateLimitRemaining == 0)  // the reconciler's process-wide reading: the lowest
        #expect(exposition().contains(#"github_api_rate_limit_remaining{owner="octo"} 0.0"#))
        #expect(exposition().contains(#"github_api_rate_limit_remaining{owner=""} 4200"#))
    }
}

@Suite struct SingleFlightCacheTests {
    /// However many callers ask at once, one fetch runs and every caller gets its value.
    @Test func fetchesOnceForEveryoneWaiting() async throws {
        let cache = SingleFlightCache<Int, String>()
        let fetches = Counter()
        let (gate, open) = AsyncStream<Void>.makeStream()
        let values = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await cache.value(for: 1, isFresh: { _ in true }) {
                        fetches.increment()
                        for await _ in gate { break }
                        return .success("token")
                    }
                }
            }
            try await waitUntil("every caller waits for the one fetch") { cache.waiting(for: 1) == 20 }
            open.yield()
            var values: [String] = []
            for try await value in group { values.append(value) }
            return values
        }
        #expect(values == Array(repeating: "token", count: 20))
        #expect(fetches.value == 1)
        // Kept while fresh; fetched again once stale.
        #expect(try await cache.value(for: 1, isFresh: { _ in true }) { .success("other") } == "token")
        #expect(try await cache.value(for: 1, isFresh: { _ in false }) { .success("new") } == "new")
    }

    @Test func keepsNoFailure() async throws {
        let cache = SingleFlightCache<Int, String>()
        await #expect(throws: GitHubAPIError.self) {
            try await cache.value(for: 1, isFresh: { _ in true }) {
                .failure(GitHubAPIError(endpoint: "x", kind: .server, message: "down"))
            }
        }
        #expect(try await cache.value(for: 1, isFresh: { _ in true }) { .success("up") } == "up")
        // A value learned elsewhere does not replace a cached one.
        cache.setIfAbsent("learned", for: 1)
        #expect(cache.cached(1) == "up")
        #expect(cache.remove(1) { $0 == "other" } == false)
        #expect(cache.remove(1) { $0 == "up" } == true && cache.cached(1) == nil)
    }
}

/// A count shared by concurrent tasks.
final class Counter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
