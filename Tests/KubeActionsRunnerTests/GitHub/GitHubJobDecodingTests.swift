import Foundation
import Testing

@testable import GitHub
@testable import TestSupport

/// `GitHubJob.fastDecode` answers what `JSONDecoder` does, or leaves the answer to it.
@Suite struct GitHubJobDecodingTests {
    func full(_ body: [UInt8]) -> GitHubJob? {
        try? JSONDecoder().decode(GitHubJob.self, from: Data(body))
    }

    @Test func githubsAnswerTakesTheFastPathAndDecodesAlike() throws {
        let body = try Fixtures.bytes("github/api/job.get.200.json")
        let fast = try #require(GitHubJob.fastDecode(body))
        #expect(fast == full(body))
        #expect(fast.id == 399_444_496 && fast.runID == 29_679_449 && fast.status == "completed")
    }

    @Test(arguments: [
        (#""status": "completed""#, #""status": "queued""#),
        (#""conclusion": "success""#, #""conclusion": null"#),
        (#""conclusion": "success""#, #""conclusion": 1"#),
        (#""runner_name": "my runner""#, #""runner_name": "my \"runner\"""#),
        (#""run_id": 29679449"#, #""run_id": null"#),
        (#""run_id": 29679449"#, #""run_id": "29679449""#),
        (#""id": 399444496"#, #""id": 399444496.5"#),
        (#""id": 399444496"#, #""ident": 399444496"#),
        (#""labels": ["#, #""labels": [null, "#),
        (#""name": "build""#, #""name": "build", "name": "again""#),
        (#""status": "completed""#, #""status": "completed"]"#),
    ])
    func editedAnswersDecodeAlikeOrFallBack(edit: (String, String)) throws {
        let text = try Fixtures.text("github/api/job.get.200.json")
        let edited = text.replacingOccurrences(of: edit.0, with: edit.1, options: [], range: text.range(of: edit.0))
        try #require(edited != text, "the edit applies")
        let body = Array(edited.utf8)
        if let fast = GitHubJob.fastDecode(body) {
            #expect(fast == full(body))
        }
    }
}
