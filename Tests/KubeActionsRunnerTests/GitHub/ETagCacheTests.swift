import Testing

@testable import GitHub
@testable import Observability
@testable import Support
@testable import TestSupport

/// The ETag cache: bounded in bytes over URL, ETag and body, least recently used out first.
@Suite struct ETagCacheTests {
    static func entry(_ etag: String, bytes: Int) -> ETagCache.Entry {
        ETagCache.Entry(etag: etag, body: Array(repeating: UInt8(ascii: "x"), count: bytes))
    }

    @Test func countsURLETagAndBodyAgainstItsLimit() {
        let cache = ETagCache(byteLimit: 1_000)
        cache.store(Self.entry("e1", bytes: 100), for: "u1")
        #expect(cache.bytes == 2 + 2 + 100)
        cache.store(Self.entry("e2", bytes: 50), for: "u1")  // replaces the URL's answer
        #expect(cache.bytes == 2 + 2 + 50 && cache.count == 1)
    }

    @Test func evictsTheLeastRecentlyUsedFirst() {
        let cache = ETagCache(byteLimit: 300)
        cache.store(Self.entry("a", bytes: 96), for: "u1")  // 99 bytes each
        cache.store(Self.entry("b", bytes: 96), for: "u2")
        cache.store(Self.entry("c", bytes: 96), for: "u3")
        #expect(cache.entry(for: "u1")?.etag == "a")  // u1 used again: u2 is now the least recently used
        cache.store(Self.entry("d", bytes: 96), for: "u4")
        #expect(cache.entry(for: "u2") == nil)
        #expect(cache.entry(for: "u1")?.etag == "a" && cache.entry(for: "u3")?.etag == "c")
        #expect(cache.entry(for: "u4")?.etag == "d")
        #expect(cache.bytes <= 300)
    }

    @Test func neverStoresAnAnswerLargerThanTheWholeLimit() {
        let cache = ETagCache(byteLimit: 100)
        cache.store(Self.entry("a", bytes: 10), for: "u1")
        cache.store(Self.entry("b", bytes: 200), for: "u2")
        #expect(cache.entry(for: "u2") == nil && cache.entry(for: "u1") != nil)
    }

    @Test func aNotModifiedAnswerStillServesTheStoredBodyAndAnEvictedOneIsAskedAfresh() async throws {
        let transport = RecordingTransport()
        let runs7 = #"{"total_count":1,"workflow_runs":[{"id":7,"status":"queued"}]}"#
        let runs8 = #"{"total_count":1,"workflow_runs":[{"id":8,"status":"queued"}]}"#
        // Room for one list's answer only.
        let github = GitHubClient(
            configuration: .init(baseURL: "https://api.github.com", token: Secret("t"), etagCacheBytes: 200),
            transport: transport,
            metrics: Metrics(),
            logger: LogCapture().logger(),
            clock: ManualClock()
        )
        transport.enqueue(200, runs7, headers: [("ETag", #""a""#)])
        transport.enqueue(304, "", headers: [("ETag", #""a""#)])
        transport.enqueue(200, runs8, headers: [("ETag", #""b""#)])
        transport.enqueue(200, runs7, headers: [("ETag", #""a""#)])
        #expect(
            try await github.runs(owner: "o", repo: "a", status: "queued") == [WorkflowRun(id: 7, status: "queued")]
        )
        #expect(
            try await github.runs(owner: "o", repo: "a", status: "queued") == [WorkflowRun(id: 7, status: "queued")]
        )
        #expect(
            try await github.runs(owner: "o", repo: "b", status: "queued") == [WorkflowRun(id: 8, status: "queued")]
        )
        #expect(
            try await github.runs(owner: "o", repo: "a", status: "queued") == [WorkflowRun(id: 7, status: "queued")]
        )
        let conditions = transport.requests.map { $0.header("If-None-Match") }
        #expect(conditions == [nil, #""a""#, nil, nil])  // o/a's answer made room for o/b's
        #expect(github.etags.bytes <= 200)
    }
}
