import Foundation
import TestSupport
import Testing

@testable import Runners

@Suite struct RunnerJobTests {
    /// Compares with the reviewed golden file; `UPDATE_GOLDEN=1` rewrites it (then review the diff).
    @Test(arguments: RunnerMode.allCases)
    func rendersTheReviewedJobForEachMode(mode: RunnerMode) throws {
        let job = RunnerJob.render(for: Samples.request, settings: Samples.settings(mode))
        let rendered = job.job.rendered(pretty: true) + "\n"
        let path = "golden/job.\(mode.rawValue).json"
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try Data(rendered.utf8).write(to: Fixtures.directory.appendingPathComponent(path))
        }
        #expect(rendered == (try Fixtures.text(path)))
    }

    @Test func rendersTheSecretOwnedByTheJob() throws {
        let job = RunnerJob.render(for: Samples.request, settings: Samples.settings(.standard))
        let secret = job.secret(
            jitConfig: "ENCODED",
            jobUID: "1234-uid",
            runnerID: 23,
            runnerName: "runner-289782451-a1b2c"
        )
        let rendered = secret.rendered(pretty: true) + "\n"
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try Data(rendered.utf8).write(to: Fixtures.directory.appendingPathComponent("golden/secret.json"))
        }
        #expect(rendered == (try Fixtures.text("golden/secret.json")))
        #expect(!job.job.rendered().contains("ENCODED"))
    }

    @Test func keepsDockerAndPrivilegeOutOfTheNonDockerModes() {
        for mode in [RunnerMode.standard, .userns] {
            let text = RunnerJob.render(for: Samples.request, settings: Samples.settings(mode)).job.rendered()
            #expect(!text.contains("privileged") && !text.contains("dind") && !text.contains("DOCKER_HOST"))
            #expect(text.contains("\"hostUsers\":false") == (mode == .userns))
        }
        for mode in [RunnerMode.dind, .dindRootless] {
            let text = RunnerJob.render(for: Samples.request, settings: Samples.settings(mode)).job.rendered()
            #expect(text.contains("\"restartPolicy\":\"Always\""))  // native sidecar
            #expect(text.contains("\"hostUsers\":false") == (mode == .dindRootless))
        }
    }

    @Test func setsTheMTUOnEveryDockerNetwork() {
        let text = RunnerJob.render(for: Samples.request, settings: Samples.settings(.dind, mtu: 1400)).job.rendered()
        #expect(text.contains("\"--mtu=1400\""))
        #expect(text.contains("\"--default-network-opt=bridge=com.docker.network.driver.mtu=1400\""))
    }

    @Test(arguments: [
        ("Octocat", "Octocat"),
        ("hello.world_repo", "hello.world_repo"),
        ("-leading-and-trailing-", "leading-and-trailing"),
        ("with space/and:colon", "with-space-and-colon"),
        (String(repeating: "a", count: 70), String(repeating: "a", count: 63)),
        (String(repeating: "a", count: 62) + ".b", String(repeating: "a", count: 62)),
        ("ünïcode", "n--code"),  // each byte of a multi-byte character becomes "-",
    ])
    func sanitizesLabelValues(input: String, expected: String) {
        #expect(RunnerJob.labelValue(input) == expected)
    }
}
