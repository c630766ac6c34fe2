import Foundation
import Synchronization
import _CryptoExtras

@testable import GitHub
@testable import HTTPClient
@testable import Support

/// A GitHub App's side of GitHub, small enough to read: it verifies the App's JWT with the App's public key (RS256:
/// PKCS#1 v1.5 padding, so a PSS signature fails), issues installation tokens that expire an hour after the test
/// clock's now, finds installations, and serves runner lists and JIT configurations only to an unexpired token of
/// the owner's installation, with a rate-limit window per installation. Paths may sit under a prefix (GHES'
/// `/api/v3`).
final class MiniGitHub: Sendable {
    struct Installation: Sendable {
        var id: Int64
        var account: String
        var type = "Organization"
    }

    struct State {
        var installations: [Installation] = []
        /// Token → (installation id, expiry).
        var tokens: [String: (installation: Int64, expiresAt: Double)] = [:]
        var exchanges = 0
        var remaining: [Int64: Int] = [:]
        /// While set, token exchanges wait for it (to see callers pile up).
        var holdExchanges: AsyncStream<Void>? = nil
        var rejectedJWTs: [String] = []
        /// The claims of every JWT accepted, as sent.
        var claims: [String] = []
    }

    static let appID = "4242"
    let publicKey: _RSA.Signing.PublicKey
    let prefix: String
    let now: Mutex<Double>
    let state = Mutex(State())

    init(publicKey: _RSA.Signing.PublicKey, prefix: String = "", now: Double = 1_700_000_000) {
        self.publicKey = publicKey
        self.prefix = prefix
        self.now = Mutex(now)
    }

    @discardableResult
    func install(on account: String, id: Int64, type: String = "Organization", remaining: Int = 5000) -> Int64 {
        state.withLock {
            $0.installations.append(Installation(id: id, account: account, type: type))
            $0.remaining[id] = remaining
        }
        return id
    }

    var exchanges: Int { state.withLock { $0.exchanges } }

    /// Answers one request: `method`, the path with its query, and the Authorization header.
    func answer(method: String, target: String, authorization: String?) async -> HTTPClientResponse {
        guard target.hasPrefix(prefix + "/") else { return .json(404, #"{"message":"Not Found"}"#) }
        let target = String(target.dropFirst(prefix.count))
        let path = String(target.prefix { $0 != "?" })
        let parts = path.split(separator: "/").map(String.init)
        let bearer = authorization.flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil } ?? ""

        // The App's own endpoints: a valid JWT.
        if parts.first == "app" || parts.last == "installation" {
            if let problem = verify(jwt: bearer) {
                state.withLock { $0.rejectedJWTs.append(problem) }
                return .json(401, #"{"message":"\#(problem)"}"#)
            }
            if method == "GET", parts == ["app"] {
                return .json(200, #"{"id":\#(Self.appID),"slug":"kube-actions-runner","name":"kube-actions-runner"}"#)
            }
            if method == "GET", parts == ["app", "installations"] {
                let list = state.withLock { $0.installations }.map {
                    #"{"id":\#($0.id),"account":{"login":"\#($0.account)","type":"\#($0.type)"},"permissions":{"administration":"write","organization_self_hosted_runners":"write","actions":"read","metadata":"read"},"suspended_at":null}"#
                }
                return .json(200, "[" + list.joined(separator: ",") + "]")
            }
            if method == "POST", parts.count == 4, parts[1] == "installations", parts[3] == "access_tokens",
                let id = Int64(parts[2])
            {
                return await exchange(installation: id)
            }
            if method == "GET", parts.last == "installation", parts.count >= 3 {
                let account = parts[1]
                let kind = parts[0]
                let found = state.withLock { state in
                    state.installations.first {
                        $0.account.lowercased() == account.lowercased()
                            && (kind == "repos" || (kind == "orgs") == ($0.type == "Organization"))
                    }
                }
                guard let found else { return .json(404, #"{"message":"Not Found"}"#) }
                return .json(
                    200,
                    #"{"id":\#(found.id),"account":{"login":"\#(found.account)","type":"\#(found.type)"}}"#
                )
            }
            return .json(404, #"{"message":"Not Found"}"#)
        }

        // Everything else: an installation token of the owner's installation.
        let owner = parts.count > 1 ? parts[1] : ""
        let now = self.now.withLock { $0 }
        let grant = state.withLock { state -> (id: Int64, remaining: Int)? in
            guard let token = state.tokens[bearer], token.expiresAt > now,
                let installation = state.installations.first(where: { $0.id == token.installation }),
                installation.account.lowercased() == owner.lowercased()
            else { return nil }
            state.remaining[installation.id, default: 0] -= 1
            return (installation.id, state.remaining[installation.id] ?? 0)
        }
        guard let grant else { return .json(401, #"{"message":"Bad credentials"}"#) }
        let limits = [("x-ratelimit-remaining", String(grant.remaining)), ("x-ratelimit-reset", "1700003600")]
        if grant.remaining < 0 {
            return .json(
                403,
                #"{"message":"API rate limit exceeded for installation ID \#(grant.id)."}"#,
                headers: limits
            )
        }
        if method == "POST", path.hasSuffix("/actions/runners/generate-jitconfig") {
            return .json(
                201,
                #"{"runner":{"id":23,"name":"runner-1-abcde","os":"unknown","status":"offline","busy":false,"labels":[]},"encoded_jit_config":"jit-for-\#(owner)"}"#,
                headers: limits
            )
        }
        if method == "GET", path.hasSuffix("/actions/runner-groups") {
            return .json(
                200,
                #"{"total_count":2,"runner_groups":[{"id":1,"name":"Default","visibility":"all","default":true},{"id":3,"name":"Kubernetes","visibility":"selected","default":false}]}"#,
                headers: limits
            )
        }
        if method == "GET", path.hasSuffix("/actions/runners") {
            return .json(200, #"{"total_count":0,"runners":[]}"#, headers: limits)
        }
        return .json(404, #"{"message":"Not Found"}"#, headers: limits)
    }

    private func exchange(installation id: Int64) async -> HTTPClientResponse {
        let hold = state.withLock { state -> AsyncStream<Void>? in
            state.exchanges += 1
            return state.holdExchanges
        }
        if let hold { for await _ in hold { break } }
        let now = self.now.withLock { $0 }
        guard state.withLock({ $0.installations.contains { $0.id == id } }) else {
            return .json(404, #"{"message":"Not Found"}"#)
        }
        let token = "ghs_\(id)_\(UUID().uuidString.prefix(8))"
        let expiresAt = now + 3600
        state.withLock { $0.tokens[token] = (id, expiresAt) }
        return .json(
            201,
            #"{"token":"\#(token)","expires_at":"\#(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: expiresAt)))","permissions":{"administration":"write","actions":"read"},"repository_selection":"all"}"#
        )
    }

    /// Nil when `jwt` is an RS256 JWT of the App signed by its key, issued at most a minute ahead of now and
    /// expiring within ten minutes (as GitHub checks); else GitHub's kind of complaint.
    func verify(jwt: String) -> String? {
        let parts = jwt.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, let headerBytes = Self.base64URLDecoded(parts[0]),
            let claimBytes = Self.base64URLDecoded(parts[1]), let signature = Self.base64URLDecoded(parts[2]),
            let header = try? JSONSerialization.jsonObject(with: headerBytes) as? [String: Any],
            let claims = try? JSONSerialization.jsonObject(with: claimBytes) as? [String: Any]
        else { return "A JSON web token could not be decoded" }
        guard header["alg"] as? String == "RS256" else { return "unsupported alg" }
        let signed = Array((parts[0] + "." + parts[1]).utf8)
        guard
            publicKey.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature),
                for: signed,
                padding: .insecurePKCS1v1_5
            )
        else { return "A JSON web token could not be decoded" }
        let text = String(decoding: claimBytes, as: UTF8.self)
        state.withLock { $0.claims.append(text) }
        let now = self.now.withLock { $0 }
        guard let iat = claims["iat"] as? Double, let exp = claims["exp"] as? Double else {
            return "Missing 'issued at' or 'expiration time' claim"
        }
        guard "\(claims["iss"] ?? "")" == Self.appID else { return "Integration not found" }
        guard iat <= now + 60 else {
            return "'Issued at' claim ('iat') must be an Integer representing a time in the past"
        }
        guard exp > now, exp - iat <= 600 else { return "'Expiration time' claim ('exp') is too far in the future" }
        return nil
    }

    static func base64URLDecoded(_ text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}

/// One RSA key pair per test process, made at run time (no private key is committed).
enum TestAppKey {
    static let privateKey: _RSA.Signing.PrivateKey = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    /// PKCS#1 (`BEGIN RSA PRIVATE KEY`), as GitHub hands App keys out.
    static var pkcs1PEM: String { privateKey.pemRepresentation }
    /// PKCS#8 (`BEGIN PRIVATE KEY`).
    static var pkcs8PEM: String { privateKey.pkcs8PEMRepresentation }
}
