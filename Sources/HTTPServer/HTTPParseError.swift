/// Why a request could not be read. The server answers with `status` and closes the connection.
package enum HTTPParseError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformedRequestLine
    case invalidRequestTarget
    case unsupportedVersion
    case requestLineTooLong
    case malformedHeaderField
    case obsoleteLineFolding
    case headerSectionTooLarge
    case tooManyHeaderFields
    case missingHost
    case duplicateHost
    case invalidContentLength
    case contentLengthWithTransferEncoding
    case transferEncodingInHTTP10
    case unsupportedTransferCoding
    case unsupportedExpectation
    case malformedChunk
    case bodyTooLarge

    /// The status code the server answers with.
    package var status: Int {
        switch self {
        case .requestLineTooLong: 414
        case .headerSectionTooLarge, .tooManyHeaderFields: 431
        case .unsupportedVersion: 505
        case .unsupportedTransferCoding: 501
        case .unsupportedExpectation: 417
        case .bodyTooLarge: 413
        default: 400
        }
    }

    /// A short reason, safe to send to the client and to log.
    package var description: String {
        switch self {
        case .malformedRequestLine: "malformed request line"
        case .invalidRequestTarget: "invalid request target"
        case .unsupportedVersion: "only HTTP/1.0 and HTTP/1.1 are supported"
        case .requestLineTooLong: "request line too long"
        case .malformedHeaderField: "malformed header field"
        case .obsoleteLineFolding: "obsolete line folding is not allowed"
        case .headerSectionTooLarge: "header section too large"
        case .tooManyHeaderFields: "too many header fields"
        case .missingHost: "HTTP/1.1 request without Host"
        case .duplicateHost: "more than one Host header field"
        case .invalidContentLength: "invalid or conflicting Content-Length"
        case .contentLengthWithTransferEncoding: "both Content-Length and Transfer-Encoding"
        case .transferEncodingInHTTP10: "Transfer-Encoding in an HTTP/1.0 request"
        case .unsupportedTransferCoding: "only Transfer-Encoding: chunked is supported"
        case .unsupportedExpectation: "only Expect: 100-continue is supported"
        case .malformedChunk: "malformed chunked body"
        case .bodyTooLarge: "request body too large"
        }
    }
}
