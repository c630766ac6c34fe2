/// The HTTP version of a request; only 1.0 and 1.1 are served.
public struct HTTPVersion: Sendable, Hashable, CustomStringConvertible {
    public var major: Int
    public var minor: Int

    public static let http1_0 = HTTPVersion(major: 1, minor: 0)
    public static let http1_1 = HTTPVersion(major: 1, minor: 1)

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    public var description: String { "HTTP/\(major).\(minor)" }
}

/// Header fields in the order they arrived; names compare case-insensitively.
public struct HTTPHeaders: Sendable, Sequence {
    public typealias Element = (name: String, value: String)
    private var fields: [Element]

    public init(_ fields: [Element] = []) {
        self.fields = fields
    }

    /// The first value of the named field, if any.
    public subscript(name: String) -> String? {
        fields.first { $0.name.caseInsensitiveEquals(name) }?.value
    }

    /// Every value of the named field, in order.
    public func values(_ name: String) -> [String] {
        fields.filter { $0.name.caseInsensitiveEquals(name) }.map(\.value)
    }

    public mutating func add(name: String, value: String) {
        fields.append((name, value))
    }

    public var count: Int { fields.count }

    public func makeIterator() -> IndexingIterator<[Element]> {
        fields.makeIterator()
    }
}

/// A complete request as read from a connection: head and de-chunked body.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The request-target exactly as sent.
    public var target: String
    /// The path part of the target, without the query.
    public var path: String
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Which connection the request came on (a serial number; 0 when not from a connection).
    public var connectionID: UInt64 = 0

    public init(
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

extension String {
    /// ASCII case-insensitive comparison, as HTTP field names and tokens need.
    func caseInsensitiveEquals(_ other: String) -> Bool {
        let a = self.utf8
        let b = other.utf8
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) where x != y {
            guard x | 0x20 == y | 0x20, (x | 0x20) >= UInt8(ascii: "a"), (x | 0x20) <= UInt8(ascii: "z") else {
                return false
            }
        }
        return true
    }

    /// ASCII lower-casing, without locale rules.
    var asciiLowercased: String {
        String(decoding: utf8.map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 }, as: UTF8.self)
    }
}
