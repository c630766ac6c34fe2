import Crypto
import Support

/// Verifies GitHub's `X-Hub-Signature-256`: `sha256=` + lowercase hex HMAC-SHA256 of the raw body.
package struct SignatureVerifier: Sendable {
    private let keys: [SymmetricKey]

    /// `secrets` in order of preference: the current secret, then a previous one during rotation.
    package init(secrets: [Secret]) {
        keys = secrets.map { SymmetricKey(data: Array($0.value.utf8)) }
    }

    /// Whether `header` is a valid signature of `body` under any configured secret.
    /// The comparison is constant-time; a malformed header is simply invalid.
    package func isValid(signatureHeader header: String?, body: [UInt8]) -> Bool {
        guard let header, let mac = Self.decode(header) else { return false }
        var valid = false
        for key in keys {
            // Check every key, so timing does not reveal which one matched.
            valid = HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: body, using: key) || valid
        }
        return valid
    }

    /// The signature header for `body` under `secret`, as GitHub computes it (tests and the demo sign with it).
    package static func sign(_ body: [UInt8], secret: Secret) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array(secret.value.utf8)))
        return "sha256=" + Hex.encode(mac)
    }

    /// The MAC in `sha256=` + 64 lower-case hex digits, the one spelling GitHub sends; nil for anything else.
    private static func decode(_ header: String) -> [UInt8]? {
        let bytes = Array(header.utf8)
        let prefix = Array("sha256=".utf8)
        guard bytes.count == prefix.count + 64, bytes.starts(with: prefix) else { return nil }
        return Hex.decode(bytes[prefix.count...], lowercaseOnly: true)
    }
}
