/// The HTTP version of a request; only 1.0 and 1.1 are served.
package struct HTTPVersion: Sendable, Hashable, CustomStringConvertible {
    package var major: Int
    package var minor: Int

    package static let http1_0 = HTTPVersion(major: 1, minor: 0)
    package static let http1_1 = HTTPVersion(major: 1, minor: 1)

    package init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    package var description: String { "HTTP/\(major).\(minor)" }
}

/// Header fields in the order they arrived; names compare case-insensitively.
package struct HTTPHeaders: Sendable, Sequence {
    package typealias Element = (name: String, value: String)
    private var fields: [Element]

    package init(_ fields: [Element] = []) {
        self.fields = fields
    }

    /// The first value of the named field, if any.
    package subscript(name: String) -> String? {
        fields.first { $0.name.caseInsensitiveEquals(name) }?.value
    }

    /// Every value of the named field, in order.
    package func values(_ name: String) -> [String] {
        fields.filter { $0.name.caseInsensitiveEquals(name) }.map(\.value)
    }

    package mutating func add(name: String, value: String) {
        fields.append((name, value))
    }

    package var count: Int { fields.count }

    package func makeIterator() -> IndexingIterator<[Element]> {
        fields.makeIterator()
    }
}

/// A complete request as read from a connection: head and de-chunked body.
package struct HTTPRequest: Sendable {
    package var method: String
    /// The request-target exactly as sent.
    package var target: String
    /// The path part of the target, without the query.
    package var path: String
    package var version: HTTPVersion
    package var headers: HTTPHeaders
    package var body: [UInt8]
    /// Which connection the request came on (a serial number; 0 when not from a connection).
    package var connectionID: UInt64 = 0

    package init(
        method: String,
        target: String,
        version: HTTPVersion = .http1_1,
        headers: HTTPHeaders = HTTPHeaders(),
        body: [UInt8] = []
    ) {
        self.method = method
        self.target = target
        self.path =
            target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)
            ?? target
        self.version = version
        self.headers = headers
        self.body = body
    }
}
