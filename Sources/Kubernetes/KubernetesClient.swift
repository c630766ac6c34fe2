import HTTPClient
import Support
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `KubernetesAPI` over an `HTTPTransport`: JSON bodies, bearer token (re-read from its file on every call,
/// since projected service-account tokens rotate), and `metav1.Status` errors turned into `KubernetesAPIError`.
///
/// Every call takes one path: a `KubernetesRequest` (verb, resource, namespace, name) goes through `send`, which
/// authenticates it, honours the API server's `Retry-After` and turns a failure into a `KubernetesAPIError`; `call`
/// decodes the answer as a `KubernetesAnswer`. The calls themselves are in `+Jobs` (Jobs and their Secrets), `+Pods`
/// (pods and events) and `+State` (Leases and ConfigMaps).
package final class KubernetesClient: KubernetesAPI {
    private let connection: KubernetesConnection
    private let transport: any HTTPTransport
    private let files: any FileReading
    private let timeout: Duration
    /// After a 429 with `Retry-After` (or `details.retryAfterSeconds`), no call is made before this instant.
    private let notBefore = Mutex<MonotonicClock.Instant?>(nil)
    private let clock: MonotonicClock

    package init(
        connection: KubernetesConnection,
        transport: any HTTPTransport,
        files: any FileReading = LocalFiles(),
        timeout: Duration = .seconds(4),
        clock: some Clock<Duration> = ContinuousClock()
    ) {
        self.clock = MonotonicClock(clock)
        self.connection = connection
        self.transport = transport
        self.files = files
        self.timeout = timeout
    }

    /// Objects per list request: the API server sends a large list in chunks (`limit` and `continue`), so neither
    /// side holds thousands of objects in one body.
    static let listPageSize = 500

    // MARK: - The call path

    /// Sends `request` and decodes its 2xx answer.
    func call<Answer: KubernetesAnswer>(
        _ request: KubernetesRequest,
        as answer: Answer.Type = Answer.self
    ) async throws(KubernetesAPIError) -> Answer {
        try Self.decode(try await send(request), of: request, as: Answer.self)
    }

    /// The 2xx answer to `request` decoded as `Answer`.
    static func decode<Answer: KubernetesAnswer>(
        _ response: HTTPClientResponse,
        of request: KubernetesRequest,
        as answer: Answer.Type = Answer.self
    ) throws(KubernetesAPIError) -> Answer {
        guard let value = try? JSONDecoder().decode(Answer.self, from: Data(response.body)) else {
            throw KubernetesAPIError(request, kind: .unexpectedResponse, status: response.status, Answer.expected)
        }
        return value
    }

    /// The decoded answer, or nil when there is no such object (404).
    func callIfFound<Answer: KubernetesAnswer>(
        _ request: KubernetesRequest,
        as answer: Answer.Type = Answer.self
    ) async throws(KubernetesAPIError) -> Answer? {
        do {
            return try await call(request, as: Answer.self)
        } catch  where error.kind == .notFound {
            return nil
        }
    }

    /// Lists `request` as metadata only, following `continue` tokens up to `limit` items (all without one).
    func listMetadata(_ request: KubernetesRequest, limit: Int?) async throws(KubernetesAPIError) -> [ObjectMetadata] {
        var request = request
        request.accept = KubernetesRequest.metadataOnly
        var items: [ObjectMetadata] = []
        var token: String?
        repeat {
            let pageSize = min(Self.listPageSize, limit.map { $0 - items.count } ?? Self.listPageSize)
            var page: [(name: String, value: String)] = [("limit", "\(pageSize)")]
            if let token { page.append(("continue", token)) }
            let list = try await call(request.adding(page), as: MetadataList.self)
            items += list.items.map(\.metadata)
            token = list.metadata?.continue.flatMap { $0.isEmpty ? nil : $0 }
        } while token != nil && items.count < (limit ?? .max)
        return items
    }

    /// An object's metadata as a metadata-only list carries it.
    struct ObjectMetadata: Decodable {
        struct Owner: Decodable { var uid: String? }
        var name: String
        var labels: [String: String]?
        var annotations: [String: String]?
        var creationTimestamp: String?
        var uid: String?
        var ownerReferences: [Owner]?
    }

    private struct MetadataList: KubernetesAnswer {
        static let expected = "the answer is not a PartialObjectMetadataList"
        struct ListMetadata: Decodable { var `continue`: String? }
        struct Item: Decodable { var metadata: ObjectMetadata }
        var metadata: ListMetadata?
        var items: [Item]
    }

    /// Sends `request` and returns its 2xx answer; any other answer, or none, is thrown as a `KubernetesAPIError`.
    @discardableResult
    func send(_ request: KubernetesRequest) async throws(KubernetesAPIError) -> HTTPClientResponse {
        if let until = notBefore.withLock({ $0 }), clock.now < until {
            throw KubernetesAPIError(
                request,
                kind: .unavailable,
                "not called: the API server asked to retry later (429 Retry-After)"
            )
        }
        var headers: [(name: String, value: String)] = [
            ("Accept", request.accept),
            ("User-Agent", "kube-actions-runner/\(KubeActionsRunnerVersion.current)"),
        ]
        if request.body != nil { headers.append(("Content-Type", "application/json")) }
        if let token = try bearerToken(for: request) { headers.append(("Authorization", "Bearer \(token)")) }
        let response: HTTPClientResponse
        do {
            response = try await transport.send(
                HTTPClientRequest(
                    method: request.method,
                    url: connection.server + request.path,
                    headers: headers,
                    body: request.body.map { $0.renderedBytes() },
                    timeout: timeout
                )
            )
        } catch {
            throw KubernetesAPIError(request, kind: .transport, error.message)
        }
        if (200..<300).contains(response.status) { return response }
        let error = Self.error(for: response, of: request)
        if response.status == 429 {
            // Honour the API server's Retry-After (priority and fairness): no call from this client until then.
            let seconds = error.retryAfterSeconds ?? 1
            let until = clock.now + .seconds(seconds)
            notBefore.withLock { $0 = max($0 ?? until, until) }
        }
        throw error
    }

    /// The token to present, read from its file on every call when it comes from one.
    private func bearerToken(for request: KubernetesRequest) throws(KubernetesAPIError) -> String? {
        switch connection.credentials {
        case .none:
            return nil
        case .token(let token):
            return token.value
        case .tokenFile(let path):
            let token: String?
            do {
                token = try files.read(path)
            } catch {
                throw KubernetesAPIError(request, kind: .unauthorized, "cannot read the token file: \(error)")
            }
            guard let token = token?.trimmingOWS().droppingTrailingNewlines(), !token.isEmpty else {
                throw KubernetesAPIError(request, kind: .unauthorized, "token file \(path) is missing or empty")
            }
            return token
        }
    }

    /// The error a non-2xx answer to `request` means, from its status and its `metav1.Status` body.
    static func error(for response: HTTPClientResponse, of request: KubernetesRequest) -> KubernetesAPIError {
        let status = Status.parse(response.body)
        let kind: KubernetesAPIError.Kind
        switch (response.status, status?.reason) {
        case (409, "AlreadyExists"): kind = .alreadyExists
        case (409, _): kind = .conflict
        case (422, _): kind = .invalid
        case (403, _): kind = .forbidden
        case (401, _): kind = .unauthorized
        case (404, _): kind = .notFound
        case (429, _), (500...599, _): kind = .unavailable
        default: kind = .unexpectedResponse
        }
        let causes = (status?.details?.causes ?? []).map { cause in
            [cause.field, cause.message].compactMap { $0 }.joined(separator: ": ")
        }
        var error = KubernetesAPIError(
            request,
            kind: kind,
            status: response.status,
            status?.message ?? "HTTP \(response.status)"
        )
        error.causes = causes
        error.retryAfterSeconds =
            response.header("retry-after").flatMap { Int($0) }.map { min(max($0, 0), 600) }
            ?? status?.details?.retryAfterSeconds
        return error
    }
}

extension KubernetesAPIError {
    /// A failure of `request`: its verb, resource and namespace say which call failed.
    init(_ request: KubernetesRequest, kind: Kind, status: Int? = nil, _ message: String) {
        self.init(
            kind: kind,
            verb: request.verb,
            resource: request.resource,
            namespace: request.namespace,
            status: status,
            message: message
        )
    }
}
