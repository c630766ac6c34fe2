/// Why the server could not start or keep serving.
package enum HTTPServerError: Error, CustomStringConvertible, Equatable {
    case invalidAddress(String)
    case system(String, Int32)

    package var description: String {
        switch self {
        case .invalidAddress(let host): "cannot listen on '\(host)': not an IPv4 or IPv6 address"
        case .system(let call, let code): "\(call) failed: errno \(code)"
        }
    }
}
