/// A response to send: status, extra header fields and a complete body.
///
/// The server adds `Content-Length`, `Date` and `Connection` itself.
package struct HTTPResponse: Sendable {
    package var status: Int
    package var headers: [(name: String, value: String)]
    package var body: [UInt8]

    package init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A plain-text response; the body ends with a newline.
    package static func text(
        _ status: Int,
        _ text: String,
        headers: [(name: String, value: String)] = []
    ) -> HTTPResponse {
        HTTPResponse(
            status: status,
            headers: [("Content-Type", "text/plain; charset=utf-8")] + headers,
            body: Array((text + "\n").utf8)
        )
    }

    /// The reason phrase for the statuses this service sends.
    package static func reason(for status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 417: "Expectation Failed"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: "Status \(status)"
        }
    }
}

extension HTTPResponse {
    /// The bytes on the wire. `Content-Length` is always sent, also for HEAD (the length GET would have had).
    func serialized(keepAlive: Bool, headOnly: Bool, version: HTTPVersion, date: String) -> [UInt8] {
        var head = "\(version) \(status) \(HTTPResponse.reason(for: status))\r\n"
        head += "Date: \(date)\r\n"
        for (name, value) in headers {
            head += "\(name): \(value)\r\n"
        }
        head += "Content-Length: \(body.count)\r\n"
        head += keepAlive ? "" : "Connection: close\r\n"
        head += "\r\n"
        var bytes = Array(head.utf8)
        if !headOnly {
            bytes.append(contentsOf: body)
        }
        return bytes
    }
}
