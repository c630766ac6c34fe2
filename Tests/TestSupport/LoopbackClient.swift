import Support

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A minimal blocking HTTP/1.1 client over one TCP connection to a loopback port.
///
/// Tests use it to send exact bytes (valid or not).
/// Blocking calls: run it on a thread of its own (`LoopbackClient.run`), not the cooperative pool.
package final class LoopbackClient {
    package struct Response: Equatable {
        package var status: Int
        package var headers: [(String, String)]
        package var body: [UInt8]

        package static func == (lhs: Response, rhs: Response) -> Bool {
            lhs.status == rhs.status && lhs.body == rhs.body
        }

        package func header(_ name: String) -> String? {
            headers.first { $0.0.caseInsensitiveEquals(name) }?.1
        }

        package var text: String { String(decoding: body, as: UTF8.self) }
    }

    package enum ClientError: Error, Equatable {
        case connect(Int32)
        case closed
        case timeout
        case malformed(String)
    }

    package let fd: Int32
    private var buffer: [UInt8] = []

    /// Connects to `127.0.0.1:port`; reads time out after `timeout`.
    package init(port: Int, timeout: Duration = .seconds(15)) throws(ClientError) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            // Not closed here: every property is set, so throwing runs deinit, which closes it. Closing it twice
            // would close whatever another thread had opened under the same number in between.
            throw .connect(errno)
        }
        var tv = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(fd)
    }

    /// Sends raw bytes; returns false when the peer closed the connection.
    @discardableResult
    package func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }

    @discardableResult
    package func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Reads exactly `count` bytes (or fewer if the peer closes), bypassing response parsing.
    package func readExactly(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let n = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress, count, Int32(MSG_WAITALL)) }
        return Array(bytes[0..<max(0, n)])
    }

    /// Sends one request with a Content-Length body.
    package func request(
        _ method: String,
        _ target: String,
        headers: [(String, String)] = [],
        body: [UInt8] = []
    ) throws(ClientError) -> Response {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        guard send(Array(head.utf8) + body) else { throw .closed }
        return try readResponse(headOnly: method == "HEAD")
    }

    /// Reads one response; interim 1xx responses are skipped.
    package func readResponse(headOnly: Bool = false) throws(ClientError) -> Response {
        while true {
            let headEnd = try fill(until: { $0.firstRange(of: [13, 10, 13, 10]) })
            let head = String(decoding: buffer[0..<headEnd.lowerBound], as: UTF8.self)
            buffer.removeFirst(headEnd.upperBound)
            var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
            let statusLine = lines.removeFirst()
            let parts = statusLine.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
                throw .malformed(statusLine)
            }
            let headers = lines.compactMap { line -> (String, String)? in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (String(line[..<colon]), line[line.index(after: colon)...].trimmingOWS())
            }
            if status >= 100 && status < 200 { continue }
            let length = headers.first { $0.0.caseInsensitiveEquals("Content-Length") }.flatMap { Int($0.1) } ?? 0
            let bodyLength = headOnly ? 0 : length
            _ = try fill(until: { $0.count >= bodyLength ? 0..<bodyLength : nil })
            let body = Array(buffer[0..<bodyLength])
            buffer.removeFirst(bodyLength)
            return Response(status: status, headers: headers, body: body)
        }
    }

    /// Reads until the server closes; returns everything read (tests for "answered, then closed").
    package func readUntilClose() throws(ClientError) -> [UInt8] {
        while true {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == ECONNRESET { break }
                throw .timeout
            }
            buffer.append(contentsOf: chunk[0..<n])
        }
        defer { buffer.removeAll() }
        return buffer
    }

    private func fill<T>(until found: ([UInt8]) -> T?) throws(ClientError) -> T {
        while true {
            if let result = found(buffer) { return result }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { throw .closed }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw .timeout }
                throw .closed
            }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }

    /// Runs blocking work on a thread of its own and awaits its result.
    package static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            LoopThread {
                do {
                    continuation.resume(returning: try work())
                } catch {
                    continuation.resume(throwing: error)
                }
            }.start()
        }
    }
}

extension Array where Element == UInt8 {
    package func firstRange(of pattern: [UInt8]) -> Range<Int>? {
        guard count >= pattern.count else { return nil }
        for start in 0...(count - pattern.count) where self[start] == pattern[0] {
            if Array(self[start..<start + pattern.count]) == pattern { return start..<start + pattern.count }
        }
        return nil
    }
}
