import Support

/// One call to the API server, described as RBAC sees it: a verb on a resource in a namespace, and the object's
/// name when the call is about one object.
///
/// The HTTP method follows from the verb and the URL from the resource, so each call site's `verb:` and `resource:`
/// literals are the request itself; the conformance test reads those literals and checks that the Role grants
/// exactly them.
struct KubernetesRequest {
    /// `get`, `list`, `create`, `update` or `delete`.
    var verb: String
    /// `plural.group` for a named API group (`jobs.batch`); the plural alone for the core group (`secrets`).
    var resource: String
    /// The API version the resource is served at.
    var version: String
    var namespace: String
    /// The object's name, for `get`, `update` and `delete`.
    var name: String?
    /// Query parameters in order, not yet encoded.
    var query: [(name: String, value: String)]
    var body: JSONValue?
    /// The representation asked for (`Accept`).
    var accept: String

    init(
        verb: String,
        resource: String,
        version: String = "v1",
        namespace: String,
        name: String? = nil,
        query: [(name: String, value: String)] = [],
        body: JSONValue? = nil,
        accept: String = "application/json"
    ) {
        self.verb = verb
        self.resource = resource
        self.version = version
        self.namespace = namespace
        self.name = name
        self.query = query
        self.body = body
        self.accept = accept
    }

    /// Which field manager writes are recorded under (`managedFields`).
    static let fieldManager = (name: "fieldManager", value: "kube-actions-runner")

    /// Asks for a list of metadata only (API servers answer it since Kubernetes 1.15).
    static let metadataOnly = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"

    var method: String {
        switch verb {
        case "get", "list": "GET"
        case "create": "POST"
        case "update": "PUT"
        case "delete": "DELETE"
        default: preconditionFailure("no HTTP method for the verb \(verb)")
        }
    }

    /// `/api/{version}/namespaces/{namespace}/{plural}[/{name}][?query]` for the core group,
    /// `/apis/{group}/{version}/namespaces/…` for another; every resource the service always uses is served at `v1`.
    var path: String {
        var path: String
        if let dot = resource.firstIndex(of: ".") {
            let group = resource[resource.index(after: dot)...]
            path = "/apis/\(group)/\(version)/namespaces/\(namespace)/\(resource[..<dot])"
        } else {
            path = "/api/\(version)/namespaces/\(namespace)/\(resource)"
        }
        if let name { path += "/\(name)" }
        for (index, parameter) in query.enumerated() {
            path += (index == 0 ? "?" : "&") + parameter.name + "=" + percentEncodeQuery(parameter.value)
        }
        return path
    }

    /// The same request with more query parameters (a list's page size and continue token).
    func adding(_ parameters: [(name: String, value: String)]) -> KubernetesRequest {
        var request = self
        request.query += parameters
        return request
    }
}

/// An object the client reads from a 2xx answer.
protocol KubernetesAnswer: Decodable {
    /// What the answer should have been, for the error when it is not (`the answer is not a Lease`).
    static var expected: String { get }
}

/// Percent-encodes a query value (label selectors hold `=`, `,` and `!`); `/` may stay.
func percentEncodeQuery(_ text: String) -> String {
    percentEncode(text, keeping: [UInt8(ascii: "/")])
}
