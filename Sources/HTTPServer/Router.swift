/// Routes by exact path and method. Unknown paths get 404, known paths with another method 405 with `Allow`.
/// A GET route also answers HEAD.
package struct Router: Sendable {
    private var routes: [String: [String: HTTPServer.Handler]] = [:]

    package init() {}

    package mutating func add(_ method: String, _ path: String, _ handler: @escaping HTTPServer.Handler) {
        routes[path, default: [:]][method] = handler
        if method == "GET" {
            routes[path, default: [:]]["HEAD"] = handler
        }
    }

    /// Adds every route of `other`.
    package mutating func merge(_ other: Router) {
        for (path, methods) in other.routes {
            routes[path, default: [:]].merge(methods) { _, new in new }
        }
    }

    package func handle(_ request: HTTPRequest) async -> HTTPResponse {
        guard let methods = routes[request.path] else {
            return .text(404, "not found")
        }
        guard let handler = methods[request.method] else {
            let allow = methods.keys.sorted().joined(separator: ", ")
            return .text(405, "method not allowed", headers: [("Allow", allow)])
        }
        return await handler(request)
    }
}
