/// An outbound HTTP request. Bodies are small JSON documents, sent whole.
public struct HTTPClientRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]?
    /// The whole exchange (connect, send, receive) must finish within this.
    public var timeout: Duration

    public init(
        method: String,
        url: String,
        headers: [(name: String, value: String)] = [],
        body: [UInt8]? = nil,
        timeout: Duration = .seconds(5)
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

/// A complete response.
public struct HTTPClientResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The last value of the named header (names compare case-insensitively).
    public func header(_ name: String) -> String? {
        headers.last { $0.name.caseInsensitiveEquals(name) }?.value
    }
}

/// No response was received.
public struct HTTPTransportError: Error, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case timeout
        case connect
        case tls
        case cancelled
        /// The answer was larger than the transport accepts (`CurlTransport.Configuration.maxResponseBytes`).
        case tooLarge
        case other
    }

    public var kind: Kind
    /// What the transport said, without the URL's query or any credential.
    public var message: String

    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// Sends requests; the seam between the API clients and the network.
public protocol HTTPTransport: Sendable {
    func send(_ request: HTTPClientRequest) async throws(HTTPTransportError) -> HTTPClientResponse
}

/// Whom a client trusts and how it proves itself, per client (the cluster's CA is not GitHub's).
public struct TLSConfiguration: Sendable, Equatable {
    /// PEM CA bundle to trust instead of the system's (a file path, or the bytes themselves).
    public var caFile: String?
    public var caData: [UInt8]?
    /// PEM client certificate and key (kubeconfig `client-certificate(-data)` / `client-key(-data)`).
    public var clientCertificate: [UInt8]?
    public var clientKey: [UInt8]?
    public var clientCertificateFile: String?
    public var clientKeyFile: String?
    /// Skip verification (kubeconfig `insecure-skip-tls-verify`); logged as a warning at start.
    public var insecureSkipVerify = false

    public init(
        caFile: String? = nil,
        caData: [UInt8]? = nil,
        clientCertificate: [UInt8]? = nil,
        clientKey: [UInt8]? = nil,
        clientCertificateFile: String? = nil,
        clientKeyFile: String? = nil,
        insecureSkipVerify: Bool = false
    ) {
        self.caFile = caFile
        self.caData = caData
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
        self.clientCertificateFile = clientCertificateFile
        self.clientKeyFile = clientKeyFile
        self.insecureSkipVerify = insecureSkipVerify
    }
}
