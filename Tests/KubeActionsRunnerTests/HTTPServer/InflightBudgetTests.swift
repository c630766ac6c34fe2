import Synchronization
import Testing

@testable import App
@testable import HTTPServer
@testable import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The global budget for request bytes in flight, over real loopback sockets, with a clock the test moves.
@Suite struct InflightBudgetTests {
    private static let body = [UInt8](repeating: UInt8(ascii: "a"), count: 5000)
    private static let head = "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
    /// Every byte of the request: what it holds of the budget until it is answered.
    private static let requestBytes = Array(head.utf8) + body

    private func configuration(
        budget: Int,
        clock: ManualClock,
        statistics: HTTPServerStatistics
    )
        -> HTTPServer.Configuration
    {
        var configuration = HTTPServer.Configuration.make()
        configuration.maxInflightBytes = budget
        configuration.clock = clock.nanoseconds
        configuration.statistics = statistics
        return configuration
    }

    @Test func servesABodyExactlyAtTheBudgetAndReleasesItsBytes() async throws {
        let statistics = HTTPServerStatistics()
        let budget = Self.body.count
        try await withServer(configuration(budget: budget, clock: ManualClock(), statistics: statistics)) { server in
            let texts = try await client(server.port) { connection in
                try (0..<2).map { _ in
                    connection.send(Self.requestBytes)
                    return try connection.readResponse().text
                }
            }
            // Twice on one connection: the first answer gave the whole budget back.
            #expect(texts == ["POST /b 5000\n", "POST /b 5000\n"])
            #expect(statistics.inflightRequestBytes == 0)
            #expect(statistics.connectionsRefusedForBudget == 0)
        }
    }

    @Test func aBodyOneByteOverTheBudgetIsNotReadThenAnswered503() async throws {
        let statistics = HTTPServerStatistics()
        let clock = ManualClock()
        let budget = Self.body.count - 1
        try await withServer(configuration(budget: budget, clock: clock, statistics: statistics)) { server in
            let connection = try await HeldConnection.open(server.port)
            connection.client.send(Self.requestBytes)
            // The head is read; the body does not fit, so it is not read at all.
            try await waitUntil("the body waits") { statistics.connectionsWaitingForBudget == 1 }
            #expect(statistics.inflightRequestBytes <= 2048)
            #expect(pendingAnswerBytes(connection.client) == 0)

            clock.advance(by: .seconds(3))  // past the 2 s wait, with nothing old enough to cut but itself
            let response = try await connection.readResponse()
            #expect(response.status == 503)
            #expect(response.header("Retry-After") == "1")
            #expect(response.header("Connection") == "close")
            try await waitUntil("the bytes are released") { statistics.inflightRequestBytes == 0 }
            #expect(statistics.connectionsRefusedForBudget == 1)
        }
    }

    @Test func aParkedBodyIsCutForANewRequestOnceOlderThanTheGraceNotBefore() async throws {
        let statistics = HTTPServerStatistics()
        let clock = ManualClock()
        let budget = 64 * 1024
        try await withServer(configuration(budget: budget, clock: clock, statistics: statistics)) { server in
            let port = server.port
            // A hoarder declares a body that takes the whole budget, sends all of it but one byte, and parks.
            let hoarder = try await HeldConnection.open(port)
            let length = budget
            let hoardHead = Array("POST /h HTTP/1.1\r\nHost: x\r\nContent-Length: \(length)\r\n\r\n".utf8)
            #expect(hoardHead.count == 52)
            hoarder.client.send(hoardHead + [UInt8](repeating: 0x62, count: length - 1))
            try await waitUntil("the hoarder holds the budget") { statistics.inflightRequestBytes == 52 + budget }

            // A delivery of 20,000 bytes arriving now has its head read, then waits for room for its body:
            // the hoarder is younger than the 1 s grace.
            let delivery = try await HeldConnection.open(port)
            let body = [UInt8](repeating: 0x64, count: 20_000)
            delivery.client.send(Array("POST /d HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n".utf8) + body)
            try await waitUntil("the delivery waits") { statistics.connectionsWaitingForBudget == 1 }
            #expect(pendingAnswerBytes(delivery.client) == 0)
            #expect(pendingAnswerBytes(hoarder.client) == 0)

            clock.advance(by: .milliseconds(1500))  // the hoarder is now past the grace, the delivery not past its wait
            let answer = try await delivery.readResponse()
            #expect(answer.status == 200)
            #expect(answer.text == "POST /d 20000\n")
            let cut = try await hoarder.readResponse()
            #expect(cut.status == 503)
            #expect(cut.header("Retry-After") == "1")
            #expect(statistics.requestsCutForBudget == 1)
            #expect(statistics.connectionsRefusedForBudget == 0)
            try await waitUntil("every byte is released") { statistics.inflightRequestBytes == 0 }
        }
    }

    @Test func largeBodiesLeaveAQuarterOfTheBudgetToDeliverySizedOnes() async throws {
        let statistics = HTTPServerStatistics()
        let clock = ManualClock()
        let budget = 2 * 1024 * 1024
        let largeShare = budget - budget / 4
        try await withServer(configuration(budget: budget, clock: clock, statistics: statistics)) { server in
            let port = server.port
            // Large bodies (over 256 KiB) parked up to exactly three quarters of the budget are admitted ...
            var hoarders: [HeldConnection] = []
            for length in [largeShare / 2, largeShare / 2] {
                let hoarder = try await HeldConnection.open(port)
                hoarder.client.send("POST /h HTTP/1.1\r\nHost: x\r\nContent-Length: \(length)\r\n\r\nparked")
                hoarders.append(hoarder)
            }
            try await waitUntil("both large bodies are admitted") {
                statistics.inflightRequestBytes >= largeShare && statistics.connectionsWaitingForBudget == 0
            }
            // ... one byte more of large body waits, although the budget has a quarter free ...
            let oneMore = try await HeldConnection.open(port)
            oneMore.client.send("POST /h HTTP/1.1\r\nHost: x\r\nContent-Length: \(256 * 1024 + 1)\r\n\r\n")
            try await waitUntil("the third large body waits") { statistics.connectionsWaitingForBudget == 1 }
            // ... and a delivery-sized body is served at once, with nothing cut and the clock not moved.
            let text = try await client(port) { connection in
                connection.send(Self.requestBytes)
                return try connection.readResponse().text
            }
            #expect(text == "POST /b 5000\n")
            #expect(statistics.requestsCutForBudget == 0)
            withExtendedLifetime((hoarders, oneMore)) {}
        }
    }

    @Test func chunkedBodiesCountAgainstTheBudgetToo() async throws {
        let statistics = HTTPServerStatistics()
        let clock = ManualClock()
        let request = Array(
            ("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "1388\r\n" + String(repeating: "c", count: 5000) + "\r\n0\r\n\r\n").utf8
        )
        // Bytes of unknown length are held to the budget and an eighth more.
        let fitting = (1...request.count).first { $0 + $0 / 8 >= request.count }!
        #expect(fitting + fitting / 8 == request.count)
        for (budget, expected) in [(fitting, 200), (fitting - 1, 503)] {
            try await withServer(configuration(budget: budget, clock: clock, statistics: statistics)) { server in
                let connection = try await HeldConnection.open(server.port)
                connection.client.send(request)
                if expected == 503 {
                    try await waitUntil("the budget is spent") { statistics.connectionsWaitingForBudget == 1 }
                    clock.advance(by: .seconds(3))
                }
                let response = try await connection.readResponse()
                #expect(response.status == expected)
            }
        }
    }
}

/// A client connection held across awaits; only one thread uses it at a time.
private final class HeldConnection: @unchecked Sendable {
    let client: LoopbackClient

    private init(client: LoopbackClient) { self.client = client }

    static func open(_ port: Int) async throws -> HeldConnection {
        try await LoopbackClient.run { HeldConnection(client: try LoopbackClient(port: port)) }
    }

    func readResponse() async throws -> LoopbackClient.Response {
        try await LoopbackClient.run { try self.client.readResponse() }
    }
}

/// Bytes the server has sent that the client has not read, without blocking.
private func pendingAnswerBytes(_ connection: LoopbackClient) -> Int {
    var byte: UInt8 = 0
    let n = recv(connection.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
    return max(0, n)
}
