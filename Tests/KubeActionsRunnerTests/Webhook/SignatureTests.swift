import Testing

@testable import Support
@testable import TestSupport
@testable import Webhook

@Suite struct SignatureTests {
    @Test func acceptsGitHubsPublishedTestVector() {
        let verifier = SignatureVerifier(secrets: [Secret("It's a Secret to Everybody")])
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        #expect(verifier.isValid(signatureHeader: header, body: Array("Hello, World!".utf8)))
        #expect(
            SignatureVerifier.sign(Array("Hello, World!".utf8), secret: Secret("It's a Secret to Everybody")) == header
        )
    }

    @Test(arguments: [
        "ping.payload.json", "workflow_job.queued.payload.json", "workflow_job.waiting.payload.json",
        "workflow_job.in_progress.payload.json", "workflow_job.completed.success.with-organization.payload.json",
    ])
    func acceptsRecordedSignaturesOfRealPayloads(file: String) throws {
        let verifier = SignatureVerifier(secrets: [Secret(Fixtures.secret)])
        let body = try Fixtures.bytes("github/\(file)")
        #expect(verifier.isValid(signatureHeader: try Fixtures.signature(of: file), body: body))
        // One changed byte breaks it.
        var tampered = body
        tampered[tampered.count / 2] ^= 0x01
        #expect(!verifier.isValid(signatureHeader: try Fixtures.signature(of: file), body: tampered))
    }

    @Test(
        arguments: [
            nil,
            "",
            "sha256=",
            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17",  // GitHub sends lowercase
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17 ",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18",
            "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        ] as [String?]
    )
    func rejectsMissingOrMalformedSignatures(header: String?) {
        let verifier = SignatureVerifier(secrets: [Secret("It's a Secret to Everybody")])
        #expect(!verifier.isValid(signatureHeader: header, body: Array("Hello, World!".utf8)))
    }

    @Test func acceptsThePreviousSecretDuringRotation() {
        let body = Array("payload".utf8)
        let verifier = SignatureVerifier(secrets: [Secret("new"), Secret("old")])
        #expect(verifier.isValid(signatureHeader: SignatureVerifier.sign(body, secret: Secret("new")), body: body))
        #expect(verifier.isValid(signatureHeader: SignatureVerifier.sign(body, secret: Secret("old")), body: body))
        #expect(!verifier.isValid(signatureHeader: SignatureVerifier.sign(body, secret: Secret("other")), body: body))
    }
}
