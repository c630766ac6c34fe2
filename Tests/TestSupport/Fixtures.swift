import Foundation

/// Reads files from `Tests/KubeActionsRunnerTests/Fixtures` (see its README for provenance).
package enum Fixtures {
    package static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("KubeActionsRunnerTests").appendingPathComponent("Fixtures")

    package static func bytes(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: directory.appendingPathComponent(path)))
    }

    package static func text(_ path: String) throws -> String {
        String(decoding: try bytes(path), as: UTF8.self)
    }

    /// GitHub's documented test secret, under which `github/signatures.json` was computed.
    package static let secret = "It's a Secret to Everybody"

    /// The `X-Hub-Signature-256` recorded for a payload fixture.
    package static func signature(of file: String) throws -> String {
        let json = try JSONSerialization.jsonObject(with: Data(try bytes("github/signatures.json"))) as! [String: Any]
        let files = json["files"] as! [String: [String: Any]]
        return files[file]!["x_hub_signature_256"] as! String
    }
}
