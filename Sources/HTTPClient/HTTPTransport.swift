/// An outbound HTTP request. Bodies are small JSON documents, sent whole.
package struct HTTPClientRequest: Sendable {
    package var method: String
    package var url: String
    package var headers: [(name: String, value: String)]
    package var body: [UInt8]?
    /// The whole exchange (connect, send, receive) must finish within this.
    package var timeout: Duration

    package init(
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
package struct HTTPClientResponse: Sendable {
    package var status: Int
    package var headers: [(name: String, value: String)]
    package var body: [UInt8]

    package init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The last value of the named header (names compare case-insensitively).
    package func header(_ name: String) -> String? {
        headers.last { $0.name.caseInsensitiveEquals(name) }?.value
    }
}

/// No response was received.
package struct HTTPTransportError: Error, Equatable, CustomStringConvertible {
    package enum Kind: Sendable, Equatable {
        case timeout
        case connect
        case tls
        case cancelled
        /// The answer was larger than the transport accepts (`CurlTransport.Configuration.maxResponseBytes`).
        case tooLarge
        case other
    }

    package var kind: Kind
    /// What the transport said, without the URL's query or any credential.
    package var message: String

    package init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    package var description: String { message }
}

/// Sends requests; the seam between the API clients and the network.
package protocol HTTPTransport: Sendable {
    func send(_ request: HTTPClientRequest) async throws(HTTPTransportError) -> HTTPClientResponse
}

/// Whom a client trusts and how it proves itself, per client (the cluster's CA is not GitHub's).
package struct TLSConfiguration: Sendable, Equatable {
    /// PEM CA bundle to trust instead of the system's (a file path, or the bytes themselves).
    package var caFile: String?
    package var caData: [UInt8]?
    /// PEM client certificate and key (kubeconfig `client-certificate(-data)` / `client-key(-data)`).
    package var clientCertificate: [UInt8]?
    package var clientKey: [UInt8]?
    package var clientCertificateFile: String?
    package var clientKeyFile: String?
    /// Skip verification (kubeconfig `insecure-skip-tls-verify`); logged as a warning at start.
    package var insecureSkipVerify = false

    package init(
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
