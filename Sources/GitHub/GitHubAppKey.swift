import Support
import _CryptoExtras

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A GitHub App's private key, and the JSON Web Tokens it signs to authenticate as the App.
///
/// The JWT is RS256 — RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3) — which `_RSA.Signing` calls
/// `.insecurePKCS1v1_5`; its default padding, PSS, would be PS256, which GitHub does not accept. Claims as GitHub
/// documents them: `iat` 60 s in the past (against clock drift), `exp` 9 minutes ahead (GitHub allows at most 10),
/// `iss` the App's id (or client id).
struct GitHubAppKey: Sendable, CustomStringConvertible {
    private let key: _RSA.Signing.PrivateKey

    /// Reads a PEM private key: PKCS#1 (`BEGIN RSA PRIVATE KEY`, what GitHub hands out) or PKCS#8
    /// (`BEGIN PRIVATE KEY`). A key passed through an environment variable on one line, with `\n` written out, is
    /// read too.
    init(pem: Secret) throws(GitHubCredentialsError) {
        var text = pem.value
        if !text.contains("\n"), text.contains("\\n") {
            text = text.replacing("\\n", with: "\n")
        }
        guard text.contains("-----BEGIN RSA PRIVATE KEY-----") || text.contains("-----BEGIN PRIVATE KEY-----") else {
            throw GitHubCredentialsError(
                "GITHUB_APP_PRIVATE_KEY is not a PEM RSA private key (expected BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)"
            )
        }
        do {
            key = try _RSA.Signing.PrivateKey(pemRepresentation: text)
        } catch {
            throw GitHubCredentialsError(
                "GITHUB_APP_PRIVATE_KEY could not be read as an RSA private key of 2048 bits or more"
            )
        }
    }

    /// Never the key.
    var description: String { "GitHubAppKey(<redacted>)" }

    /// A JWT for `GET /app`, the installation look-ups and `POST /app/installations/{id}/access_tokens`.
    /// - Parameters:
    ///   - issuer: the App's id (sent as a JSON number, as GitHub's examples do) or client id (a string).
    ///   - now: epoch seconds.
    func jwt(issuer: String, now: Double) throws(GitHubCredentialsError) -> Secret {
        let issued = Int64(now.rounded(.down)) - 60
        let expires = Int64(now.rounded(.down)) + 9 * 60
        let iss: JSONValue = Int(issuer).map { .int($0) } ?? .string(issuer)
        let header: JSONValue = ["alg": "RS256", "typ": "JWT"]
        let claims: JSONValue = .object([("iat", .int(Int(issued))), ("exp", .int(Int(expires))), ("iss", iss)])
        let signingInput = Self.base64URL(header.renderedBytes()) + "." + Self.base64URL(claims.renderedBytes())
        let signature: _RSA.Signing.RSASignature
        do {
            signature = try key.signature(for: Array(signingInput.utf8), padding: .insecurePKCS1v1_5)
        } catch {
            throw GitHubCredentialsError("signing the GitHub App's JWT failed")
        }
        return Secret(signingInput + "." + Self.base64URL(Array(signature.rawRepresentation)))
    }

    /// Base64url without padding (RFC 7515 §2).
    static func base64URL(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        while text.hasSuffix("=") { text.removeLast() }
        return String(text.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
    }
}
