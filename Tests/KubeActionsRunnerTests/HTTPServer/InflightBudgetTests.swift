import Synchronization
import Testing

@testable import KubeActionsRunner

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
        configuration.clock = clock.now
        configuration.statistics = statistics
        return configuration
    }

    @Test func servesARequestExactlyAtTheBudgetAndReleasesItsBytes() async throws {
        let statistics = HTTPServerStatistics()
        let budget = Self.requestBytes.count
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

    @Test func aRequestOneByteOverTheBudgetIsNotReadThenAnswered503() async throws {
        let statistics = HTTPServerStatistics()
        let clock = ManualClock()
        let budget = Self.requestBytes.count - 1
        try await withServer(configuration(budget: budget, clock: clock, statistics: statistics)) { server in
            let connection = try await HeldConnection.open(server.port)
            connection.client.send(Self.requestBytes)
            // The server reads up to the budget and no further; the last byte stays in the socket.
            try await waitUntil("the budget is spent") { statistics.connectionsWaitingForBudget == 1 }
            #expect(statistics.inflightRequestBytes == budget)
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
            // A hoarder declares 500,000 bytes, sends exactly the budget's worth and parks.
            let hoarder = try await HeldConnection.open(port)
            let hoardHead = Array("POST /h HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n".utf8)
            hoarder.client.send(hoardHead + [UInt8](repeating: 0x62, count: budget - hoardHead.count))
            try await waitUntil("the hoarder holds the budget") { statistics.inflightRequestBytes == budget }

            // A delivery arriving now waits: the hoarder is younger than the 1 s grace.
            let delivery = try await HeldConnection.open(port)
            delivery.client.send(Self.requestBytes)
            try await waitUntil("the delivery waits") { statistics.connectionsWaitingForBudget == 1 }
            #expect(pendingAnswerBytes(delivery.client) == 0)
            #expect(pendingAnswerBytes(hoarder.client) == 0)

            clock.advance(by: .milliseconds(1500))  // the hoarder is now past the grace, the delivery not past its wait
            let answer = try await delivery.readResponse()
            #expect(answer.status == 200)
            #expect(answer.text == "POST /b 5000\n")
            let cut = try await hoarder.readResponse()
            #expect(cut.status == 503)
            #expect(cut.header("Retry-After") == "1")
            #expect(statistics.requestsCutForBudget == 1)
            #expect(statistics.connectionsRefusedForBudget == 0)
            try await waitUntil("every byte is released") { statistics.inflightRequestBytes == 0 }
        }
    }

    @Test func chunkedBodiesCountAgainstTheBudgetToo() async throws {
        let statistics = HTTPServerStatistics()
        let clock = ManualClock()
        let request = Array(
            ("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "1388\r\n" + String(repeating: "c", count: 5000) + "\r\n0\r\n\r\n").utf8
        )
        for (budget, expected) in [(request.count, 200), (request.count - 1, 503)] {
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
