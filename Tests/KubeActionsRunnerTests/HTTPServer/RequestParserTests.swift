import Testing

@testable import HTTPServer

@Suite struct RequestParserTests {
    private func parse(_ text: String, limits: RequestParser.Limits = .init()) -> [String] {
        parse(Array(text.utf8), limits: limits)
    }

    @Test func scansATrailerSectionArrivingLineByLineOnceInAll() {
        // 90 trailer fields of 640 bytes (57,600 bytes, within the 64 KiB and 100-field limits), arriving 20 bytes
        // at a time: 2,880 arrivals.
        var parser = RequestParser(limits: .init())
        parser.append(Array("POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n".utf8))
        #expect(isNeedMoreData(parser.next()))
        let before = parser.bytesExamined
        let section = Array(
            (0..<90).map { "X-T\($0 + 10): " + String(repeating: "a", count: 631) + "\r\n" }.joined().utf8
        )
        #expect(section.count == 57_600)
        for offset in stride(from: 0, to: section.count, by: 20) {
            parser.append(Array(section[offset..<offset + 20]))
            #expect(isNeedMoreData(parser.next()))
        }
        parser.append(Array("\r\n".utf8))
        guard case .request(let request) = parser.next() else {
            Issue.record("expected the request")
            return
        }
        #expect(request.body == Array("abc".utf8))
        // Linear: each byte examined about once (a rescan from the section's start per arrival: ~83 million).
        #expect(parser.bytesExamined - before < 2 * 57_602)
    }

    private func isNeedMoreData(_ event: RequestParser.Event) -> Bool {
        if case .needMoreData = event { return true }
        return false
    }

    /// Feeds bytes and describes every event until the parser wants more: "GET / body=0", "error 400", "continue".
    private func parse(_ bytes: [UInt8], limits: RequestParser.Limits = .init(), chunkSize: Int? = nil) -> [String] {
        var parser = RequestParser(limits: limits)
        var events: [String] = []
        let chunks: [[UInt8]] =
            chunkSize.map { size in
                stride(from: 0, to: bytes.count, by: size).map { Array(bytes[$0..<min($0 + size, bytes.count)]) }
            } ?? [bytes]
        for chunk in chunks {
            parser.append(chunk)
            loop: while true {
                switch parser.next() {
                case .needMoreData: break loop
                case .continueExpected: events.append("continue")
                case .request(let request):
                    events.append(
                        "\(request.method) \(request.path) body=\(String(decoding: request.body, as: UTF8.self))"
                    )
                case .failure(let error):
                    events.append("error \(error.status)")
                    return events
                }
            }
        }
        return events
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET / body="),
        ("GET /x?y=1 HTTP/1.1\r\nHost: a\r\n\r\n", "GET /x body="),
        ("GET / HTTP/1.0\r\n\r\n", "GET / body="),
        ("POST /webhook HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", "POST /webhook body=hello"),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
            "POST / body=hello world"
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n",
            "POST / body=0123456789"
        ),
        ("GET http://example.com/health?x HTTP/1.1\r\nHost: a\r\n\r\n", "GET /health body="),
        ("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "OPTIONS * body="),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-Tab:\tv\t \r\nX-Obs: caf\u{e9}\r\n\r\n", "GET / body="),
    ])
    func acceptsValidRequests(input: String, expected: String) {
        #expect(parse(input) == [expected])
        // The same bytes trickled one at a time give the same result.
        #expect(parse(Array(input.utf8), chunkSize: 1) == [expected])
    }

    @Test(arguments: [
        ("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),  // empty line first: h11 rejects it too
        ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),  // two spaces
        ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),  // trailing space
        ("GET /\r\n\r\n", 400),  // HTTP/0.9
        ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),  // not a token
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        ("GET / HTTP/9.9\r\nHost: a\r\n\r\n", 505),
        ("GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400),
        ("GET / http/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET foo HTTP/1.1\r\nHost: a\r\n\r\n", 400),  // neither origin- nor absolute-form
        ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n\r\n", 400),  // no Host
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n", 400),  // obs-fold
        ("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),  // whitespace before the first field
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),  // whitespace before the colon
        ("GET / HTTP/1.1\r\nHost: a\r\nNo-Colon\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\n: empty-name\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{01}b\r\n\r\n", 400),  // control byte in a value
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\nb\r\n\r\n", 400),  // bare LF
        ("GET / HTTP/1.1\nHost: a\n\n", 400),  // bare LF line endings (stricter than h11)
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nZ\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX", 400),  // no CRLF after data
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\n\r\n", 417),
    ])
    func rejectsInvalidRequests(input: String, status: Int) {
        #expect(parse(input) == ["error \(status)"])
        #expect(parse(Array(input.utf8), chunkSize: 1) == ["error \(status)"])
    }

    @Test func enforcesRequestLineLimitBeforeTheLineEnds() {
        let limits = RequestParser.Limits(maxRequestLineBytes: 8192)
        let longTarget = "/" + String(repeating: "a", count: 8200)
        // No CRLF yet: the parser must not wait for one.
        #expect(parse("GET \(longTarget)", limits: limits) == ["error 414"])
        let exact = "/" + String(repeating: "a", count: 8192 - "GET  HTTP/1.1".count - 1)
        #expect(parse("GET \(exact) HTTP/1.1\r\nHost: a\r\n\r\n", limits: limits) == ["GET \(exact) body="])
    }

    @Test func enforcesHeaderSectionSizeAndFieldCount() {
        let big = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "v", count: 70 * 1024)
        #expect(parse(big) == ["error 431"])  // decided before the section ends
        let fields = (0..<100).map { "X-\($0): v\r\n" }.joined()
        #expect(parse("GET / HTTP/1.1\r\n\(fields)\r\n") == ["error 400"])  // 100 fields, but no Host
        #expect(parse("GET / HTTP/1.1\r\nHost: a\r\n\(fields)\r\n") == ["error 431"])  // 101 fields
        let ninetyNine = (0..<99).map { "X-\($0): v\r\n" }.joined()
        #expect(parse("GET / HTTP/1.1\r\nHost: a\r\n\(ninetyNine)\r\n") == ["GET / body="])
    }

    @Test func rejectsOversizedBodyFromContentLengthBeforeReadingIt() {
        let limits = RequestParser.Limits(maxBodyBytes: 10)
        #expect(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", limits: limits) == ["error 413"])
        #expect(
            parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789", limits: limits)
                == ["POST / body=0123456789"]
        )
    }

    @Test func enforcesBodyLimitWhileReadingChunks() {
        let limits = RequestParser.Limits(maxBodyBytes: 10)
        let head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        #expect(parse(head + "6\r\nabcdef\r\n5\r\n", limits: limits) == ["error 413"])
        #expect(parse(head + "6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n", limits: limits) == ["POST / body=abcdefghij"])
    }

    @Test func parsesPipelinedRequestsInOrder() {
        let input =
            "GET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET /c HTTP/1.1\r\nHost: a\r\n\r\n"
        let expected = ["GET /a body=", "POST /b body=hi", "GET /c body="]
        #expect(parse(input) == expected)
        #expect(parse(Array(input.utf8), chunkSize: 3) == expected)
    }

    @Test func asksForContinueOnlyWhenTheBodyIsAcceptableAndNotYetSent() {
        let head = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
        #expect(parse(Array(head.utf8)) == ["continue"])
        #expect(parse(head + "hi") == ["POST / body=hi"])
        let tooBig = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2000\r\n\r\n"
        #expect(parse(tooBig, limits: .init(maxBodyBytes: 1000)) == ["error 413"])
    }

    @Test func reportsPhasesForTimeouts() {
        var parser = RequestParser(limits: .init())
        #expect(parser.phase == .idle)
        parser.append(Array("POST / HTTP/1.1\r\nHost: a\r\n".utf8))
        guard case .needMoreData = parser.next() else { Issue.record("expected needMoreData"); return }
        #expect(parser.phase == .head)
        parser.append(Array("Content-Length: 3\r\n\r\nab".utf8))
        guard case .needMoreData = parser.next() else { Issue.record("expected needMoreData"); return }
        #expect(parser.phase == .body)
        parser.append(Array("c".utf8))
        guard case .request = parser.next() else { Issue.record("expected a request"); return }
        #expect(parser.phase == .idle)
    }
}
