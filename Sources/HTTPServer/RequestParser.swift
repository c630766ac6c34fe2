import Support

/// An incremental, strict HTTP/1.x request parser (RFC 9112).
///
/// Bytes go in with `append(_:)`; `next()` returns the next event. The parser never reads ahead into a
/// following pipelined request: what is left stays buffered until the caller asks for it. Limits are
/// checked as bytes arrive, so a client can never make it buffer more than the limits allow.
struct RequestParser {
    /// The limits one request must stay within.
    struct Limits: Sendable {
        var maxRequestLineBytes = 8 * 1024
        var maxHeaderBytes = 64 * 1024
        var maxHeaderFields = 100
        var maxBodyBytes = 1024 * 1024
        /// Longest chunk-size line (size, extensions and CRLF) accepted.
        var maxChunkLineBytes = 1024
    }

    enum Event {
        case needMoreData
        /// The head asked for `Expect: 100-continue` and its body is acceptable: send an interim 100 now.
        case continueExpected
        case request(HTTPRequest)
        case failure(HTTPParseError)
    }

    /// Where the parser is within a request, for the connection's timeouts.
    enum Phase: Equatable {
        /// Between requests, with no byte of the next one received.
        case idle
        case head
        case body
    }

    private enum State {
        case head
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case failed(HTTPParseError)
    }

    let limits: Limits
    private var buffer: [UInt8] = []
    private var start = 0
    /// How far the search for the end of the head has looked, so trickled bytes are not rescanned.
    private var scanned = 0
    /// The same, for the end of the request line.
    private var lineScanned = 0
    private var state = State.head
    private var pending: HTTPRequest?
    private var continueOwed = false
    private var bodyBytes = 0
    /// The Content-Length of the request being read.
    private var declaredLength = 0

    init(limits: Limits) {
        self.limits = limits
    }

    var phase: Phase {
        switch state {
        case .head: start == buffer.count ? .idle : .head
        case .failed: .head
        default: .body
        }
    }

    /// The declared length of the body being received and the bytes of it still to come; nil unless a head with a
    /// nonzero Content-Length was parsed and its body is incomplete.
    var declaredBody: (length: Int, remaining: Int)? {
        if case .fixedBody(let remaining) = state, remaining > 0 { return (declaredLength, remaining) }
        return nil
    }

    /// Bytes received and not yet consumed.
    var bufferedByteCount: Int { buffer.count - start }

    /// Takes received bytes. Body bytes that arrive with nothing buffered before them go straight into the
    /// body, so a body is held once (not also in the receive buffer), and the receive buffer stays as small as
    /// one read.
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        var bytes = bytes[...]
        if start == buffer.count {
            if buffer.capacity > 16 * 1024 {
                buffer = []
            } else {
                buffer.removeAll(keepingCapacity: true)
            }
            start = 0
            scanned = 0
            lineScanned = 0
            switch state {
            case .fixedBody(let remaining) where remaining > 0:
                let n = min(remaining, bytes.count)
                pending!.body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes.prefix(n)))
                bytes = bytes.dropFirst(n)
                state = .fixedBody(remaining: remaining - n)
            case .chunkData(let remaining):
                let n = min(remaining, bytes.count)
                pending!.body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes.prefix(n)))
                bytes = bytes.dropFirst(n)
                state = remaining == n ? .chunkDataEnd : .chunkData(remaining: remaining - n)
            default:
                break
            }
        }
        buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes))
    }

    /// Drops everything buffered and the request in progress: after an error answer nothing more is parsed, and
    /// the connection must not keep a body's memory while its answer is written and input drained.
    mutating func discard() {
        buffer = []
        start = 0
        scanned = 0
        lineScanned = 0
        pending = nil
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// Releases buffer memory while the connection idles.
    mutating func shrinkIfIdle() {
        if start == buffer.count {
            buffer = []
            start = 0
            scanned = 0
            lineScanned = 0
        }
    }

    mutating func next() -> Event {
        while true {
            switch state {
            case .failed(let error):
                return .failure(error)
            case .head:
                switch parseHead() {
                case .needMore: return .needMoreData
                case .failure(let error): return fail(error)
                case .parsed: break
                }
                if continueOwed, bufferedByteCount == 0 {
                    continueOwed = false
                    return .continueExpected
                }
                continueOwed = false
            case .fixedBody(let remaining):
                if remaining == 0 { return finish() }
                let n = min(remaining, bufferedByteCount)
                if n == 0 { return .needMoreData }
                pending!.body.append(contentsOf: buffer[start..<start + n])
                start += n
                state = .fixedBody(remaining: remaining - n)
            case .chunkSize:
                guard let lineEnd = findCRLF(from: start) else {
                    if bufferedByteCount > limits.maxChunkLineBytes { return fail(.malformedChunk) }
                    return .needMoreData
                }
                guard lineEnd - start + 2 <= limits.maxChunkLineBytes else { return fail(.malformedChunk) }
                guard let size = parseChunkSize(start..<lineEnd) else { return fail(.malformedChunk) }
                start = lineEnd + 2
                if size == 0 {
                    state = .trailers
                } else {
                    guard size <= limits.maxBodyBytes - bodyBytes else { return fail(.bodyTooLarge) }
                    bodyBytes += size
                    state = .chunkData(remaining: size)
                }
            case .chunkData(let remaining):
                let n = min(remaining, bufferedByteCount)
                if n == 0 { return .needMoreData }
                pending!.body.append(contentsOf: buffer[start..<start + n])
                start += n
                state = remaining == n ? .chunkDataEnd : .chunkData(remaining: remaining - n)
            case .chunkDataEnd:
                guard bufferedByteCount >= 2 else { return .needMoreData }
                guard buffer[start] == cr, buffer[start + 1] == lf else { return fail(.malformedChunk) }
                start += 2
                state = .chunkSize
            case .trailers:
                guard bufferedByteCount >= 2 else { return .needMoreData }
                if buffer[start] == cr, buffer[start + 1] == lf {
                    start += 2
                    return finish()
                }
                // Resume the search where the last one stopped, so a trailer section that arrives line by line is
                // scanned once in all (linear), not once per arrival.
                guard let end = findDoubleCRLF(from: max(start, scanned - 3)) else {
                    if bufferedByteCount > limits.maxHeaderBytes { return fail(.headerSectionTooLarge) }
                    scanned = max(start, buffer.count - 3)
                    return .needMoreData
                }
                guard end - start <= limits.maxHeaderBytes else { return fail(.headerSectionTooLarge) }
                switch parseFields(start..<end + 2) {
                case .failure(let error): return fail(error)
                case .success: break
                }
                start = end + 4
                return finish()
            }
        }
    }

    // MARK: - Head

    private enum HeadResult {
        case needMore
        case parsed
        case failure(HTTPParseError)
    }

    private mutating func parseHead() -> HeadResult {
        // RFC 9112 §2.2 lets a server skip empty lines before the request line; h11 rejects them, and so
        // do we (GitHub never sends them): an empty request line is malformed.
        if bufferedByteCount == 0 { return .needMore }
        guard let lineEnd = findCRLF(from: max(start, lineScanned)) else {
            if hasBareLF(in: max(start, lineScanned)..<buffer.count) { return .failure(.malformedRequestLine) }
            if bufferedByteCount > limits.maxRequestLineBytes + 1 { return .failure(.requestLineTooLong) }
            lineScanned = max(start, buffer.count - 1)
            return .needMore
        }
        guard lineEnd - start <= limits.maxRequestLineBytes else { return .failure(.requestLineTooLong) }
        let fieldsStart = lineEnd + 2
        let headEnd: Int
        if buffer.count - fieldsStart >= 2, buffer[fieldsStart] == cr, buffer[fieldsStart + 1] == lf {
            headEnd = fieldsStart  // no header fields at all
        } else {
            guard let end = findDoubleCRLF(from: max(fieldsStart, scanned - 3)) else {
                // Fail fast on bare LF line ends instead of waiting for a CRLF CRLF that never comes.
                if hasBareLF(in: max(fieldsStart, scanned)..<buffer.count) { return .failure(.malformedHeaderField) }
                if buffer.count - fieldsStart > limits.maxHeaderBytes + 3 { return .failure(.headerSectionTooLarge) }
                scanned = max(fieldsStart, buffer.count - 3)
                return .needMore
            }
            headEnd = end + 2
        }
        guard headEnd - fieldsStart <= limits.maxHeaderBytes else { return .failure(.headerSectionTooLarge) }

        var request: HTTPRequest
        switch parseRequestLine(start..<lineEnd) {
        case .failure(let error): return .failure(error)
        case .success(let parsed): request = parsed
        }
        switch parseFields(fieldsStart..<headEnd) {
        case .failure(let error): return .failure(error)
        case .success(let headers): request.headers = headers
        }
        start = headEnd + 2
        scanned = 0
        lineScanned = 0
        return frame(request)
    }

    /// Decides how the body is delimited (RFC 9112 §6.3), strictly.
    private mutating func frame(_ request: HTTPRequest) -> HeadResult {
        let headers = request.headers
        let hosts = headers.values("Host")
        if hosts.count > 1 { return .failure(.duplicateHost) }
        if request.version == .http1_1, hosts.isEmpty { return .failure(.missingHost) }

        let transferEncodings = headers.values("Transfer-Encoding")
        let contentLengths = headers.values("Content-Length")
        if !transferEncodings.isEmpty, !contentLengths.isEmpty { return .failure(.contentLengthWithTransferEncoding) }

        var expectsContinue = false
        if let expect = headers["Expect"] {
            guard headers.values("Expect").count == 1, expect.caseInsensitiveEquals("100-continue") else {
                return .failure(.unsupportedExpectation)
            }
            expectsContinue = request.version == .http1_1
        }

        pending = request
        bodyBytes = 0
        if !transferEncodings.isEmpty {
            if request.version == .http1_0 { return .failure(.transferEncodingInHTTP10) }
            let codings = transferEncodings.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
                .map { $0.trimmingOWS() }
            guard codings.count == 1, codings[0].caseInsensitiveEquals("chunked") else {
                return .failure(.unsupportedTransferCoding)
            }
            state = .chunkSize
            continueOwed = expectsContinue
            return .parsed
        }
        if !contentLengths.isEmpty {
            // Stricter than RFC 9112 §6.3, which allows a list of equal values: one field, one value.
            guard contentLengths.count == 1, let length = parseContentLength(contentLengths[0]) else {
                return .failure(.invalidContentLength)
            }
            guard length <= limits.maxBodyBytes else { return .failure(.bodyTooLarge) }
            pending!.body.reserveCapacity(min(length, 16 * 1024))  // a claimed length is not yet a body
            state = .fixedBody(remaining: length)
            declaredLength = length
            continueOwed = expectsContinue && length > 0
            return .parsed
        }
        state = .fixedBody(remaining: 0)
        return .parsed
    }

    private func parseContentLength(_ value: String) -> Int? {
        let digits = value.utf8
        guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Int(value)
    }

    private enum LineResult<T> {
        case success(T)
        case failure(HTTPParseError)
    }

    private func parseRequestLine(_ range: Range<Int>) -> LineResult<HTTPRequest> {
        var i = range.lowerBound
        let end = range.upperBound
        let methodStart = i
        while i < end, isTokenChar(buffer[i]) { i += 1 }
        guard i > methodStart, i < end, buffer[i] == space else { return .failure(.malformedRequestLine) }
        let method = String(decoding: buffer[methodStart..<i], as: UTF8.self)
        i += 1
        let targetStart = i
        while i < end, buffer[i] > 0x20, buffer[i] < 0x7F { i += 1 }
        guard i > targetStart, i < end, buffer[i] == space else { return .failure(.malformedRequestLine) }
        let target = String(decoding: buffer[targetStart..<i], as: UTF8.self)
        i += 1
        // HTTP-version = "HTTP/" DIGIT "." DIGIT, and nothing after it.
        guard end - i == 8,
            buffer[i] == UInt8(ascii: "H"), buffer[i + 1] == UInt8(ascii: "T"), buffer[i + 2] == UInt8(ascii: "T"),
            buffer[i + 3] == UInt8(ascii: "P"), buffer[i + 4] == UInt8(ascii: "/"),
            isDigit(buffer[i + 5]), buffer[i + 6] == UInt8(ascii: "."), isDigit(buffer[i + 7])
        else { return .failure(.malformedRequestLine) }
        let version = HTTPVersion(major: Int(buffer[i + 5] - 48), minor: Int(buffer[i + 7] - 48))
        guard version == .http1_1 || version == .http1_0 else { return .failure(.unsupportedVersion) }

        var request = HTTPRequest(method: method, target: target, version: version)
        if target.utf8.first == UInt8(ascii: "/") {
            return .success(request)
        }
        if target == "*" {
            return method == "OPTIONS" ? .success(request) : .failure(.invalidRequestTarget)
        }
        // absolute-form (RFC 9112 §3.2.2): servers must accept it; route on its path.
        let lowered = target.asciiLowercased
        for scheme in ["http://", "https://"] where lowered.hasPrefix(scheme) {
            let afterScheme = target.utf8.dropFirst(scheme.utf8.count)
            let pathStart = afterScheme.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") }
            let rest = pathStart.map { String(target[$0...]) } ?? ""
            let path = rest.hasPrefix("/") ? rest : "/" + rest
            request.path =
                path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
                .first.map(String.init) ?? "/"
            return .success(request)
        }
        return .failure(.invalidRequestTarget)
    }

    /// Parses field lines in `range`, which ends with the CRLF of the last line.
    private func parseFields(_ range: Range<Int>) -> LineResult<HTTPHeaders> {
        var headers = HTTPHeaders()
        var i = range.lowerBound
        while i < range.upperBound {
            guard let lineEnd = findCRLF(from: i), lineEnd < range.upperBound else {
                return .failure(.malformedHeaderField)
            }
            if buffer[i] == space || buffer[i] == tab { return .failure(.obsoleteLineFolding) }
            let nameStart = i
            while i < lineEnd, isTokenChar(buffer[i]) { i += 1 }
            guard i > nameStart, i < lineEnd, buffer[i] == colon else { return .failure(.malformedHeaderField) }
            let name = String(decoding: buffer[nameStart..<i], as: UTF8.self)
            i += 1
            var valueStart = i
            var valueEnd = lineEnd
            while valueStart < valueEnd, buffer[valueStart] == space || buffer[valueStart] == tab { valueStart += 1 }
            while valueEnd > valueStart, buffer[valueEnd - 1] == space || buffer[valueEnd - 1] == tab { valueEnd -= 1 }
            for j in valueStart..<valueEnd {
                let byte = buffer[j]
                guard byte == tab || byte >= 0x20, byte != 0x7F else { return .failure(.malformedHeaderField) }
            }
            headers.add(name: name, value: String(decoding: buffer[valueStart..<valueEnd], as: UTF8.self))
            if headers.count > limits.maxHeaderFields { return .failure(.tooManyHeaderFields) }
            i = lineEnd + 2
        }
        return .success(headers)
    }

    private func parseChunkSize(_ range: Range<Int>) -> Int? {
        var i = range.lowerBound
        var size = 0
        var digits = 0
        while i < range.upperBound, let value = Hex.value(of: buffer[i]) {
            guard digits < 15 else { return nil }
            size = size << 4 | Int(value)
            digits += 1
            i += 1
        }
        guard digits > 0 else { return nil }
        // Optional whitespace, then chunk extensions, which are ignored but must hold no control bytes.
        while i < range.upperBound, buffer[i] == space || buffer[i] == tab { i += 1 }
        if i < range.upperBound {
            guard buffer[i] == UInt8(ascii: ";") else { return nil }
            for j in i..<range.upperBound {
                let byte = buffer[j]
                guard byte == tab || byte >= 0x20, byte != 0x7F else { return nil }
            }
        }
        return size
    }

    // MARK: - Completion

    private mutating func finish() -> Event {
        let request = pending!
        pending = nil
        state = .head
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 4096 {
            buffer.removeFirst(start)
            start = 0
        }
        scanned = 0
        lineScanned = 0
        return .request(request)
    }

    private mutating func fail(_ error: HTTPParseError) -> Event {
        state = .failed(error)
        pending = nil
        return .failure(error)
    }

    // MARK: - Bytes

    private func findCRLF(from index: Int) -> Int? {
        var i = index
        while i + 1 < buffer.count {
            if buffer[i] == cr {
                if buffer[i + 1] == lf { return i }
            }
            i += 1
        }
        return nil
    }

    /// Whether `range` holds an LF that does not follow a CR.
    private func hasBareLF(in range: Range<Int>) -> Bool {
        for i in range where buffer[i] == lf {
            if i == 0 || buffer[i - 1] != cr { return true }
        }
        return false
    }

    /// Bytes examined by searches for the end of a header or trailer section (tests check it grows linearly).
    private(set) var bytesExamined = 0

    private mutating func findDoubleCRLF(from index: Int) -> Int? {
        var i = index
        defer { bytesExamined += max(0, i - index) }
        while i + 3 < buffer.count {
            if buffer[i + 3] != lf {
                i += buffer[i + 3] == cr ? 1 : 4
                continue
            }
            if buffer[i] == cr, buffer[i + 1] == lf, buffer[i + 2] == cr { return i }
            i += 1
        }
        return nil
    }
}

private let cr = UInt8(ascii: "\r")
private let lf = UInt8(ascii: "\n")
private let space = UInt8(ascii: " ")
private let tab = UInt8(ascii: "\t")
private let colon = UInt8(ascii: ":")

private func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }

/// tchar from RFC 9110 §5.6.2.
private let tokenTable: [Bool] = (0..<256).map { value in
    let byte = UInt8(value)
    if isDigit(byte) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) { return true }
    return "!#$%&'*+-.^_`|~".utf8.contains(byte)
}

private func isTokenChar(_ byte: UInt8) -> Bool { tokenTable[Int(byte)] }
