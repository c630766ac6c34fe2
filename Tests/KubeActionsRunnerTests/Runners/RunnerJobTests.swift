import Foundation
import TestSupport
import Testing

@testable import Runners
@testable import Support

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

    /// A private CA and a proxy, in a dind pod (the runner and dockerd both get the proxy); reviewed as a golden file
    /// like the defaults, which stay byte for byte what they were.
    @Test(arguments: [RunnerMode.standard, .dind])
    func rendersThePrivateCAAndTheProxy(mode: RunnerMode) throws {
        var settings = Samples.settings(mode)
        settings.caBundle = RunnerJob.CABundle(.configMap("ghes-ca"), key: "ca.crt")
        settings.proxy = RunnerJob.Proxy(
            http: Secret("http://user:proxy-password@proxy.internal:3128"),
            https: Secret("http://user:proxy-password@proxy.internal:3128"),
            noProxy: "ghe.example.com,.svc,10.0.0.0/8"
        )
        let job = RunnerJob.render(for: Samples.request, settings: settings)
        let rendered = job.job.rendered(pretty: true) + "\n"
        let path = "golden/job.\(mode.rawValue).ca-and-proxy.json"
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try Data(rendered.utf8).write(to: Fixtures.directory.appendingPathComponent(path))
        }
        #expect(rendered == (try Fixtures.text(path)))
        // The proxy URLs (credentials) are in the runner's Secret, never in the Job.
        #expect(!rendered.contains("proxy-password"))
        let secret = job.secret(jitConfig: "ENCODED", jobUID: "uid", runnerID: 1, runnerName: "r")
        #expect(secret["stringData"]?["https_proxy"] == "http://user:proxy-password@proxy.internal:3128")
        #expect(secret["stringData"]?["http_proxy"] == "http://user:proxy-password@proxy.internal:3128")
        #expect(secret["stringData"]?["jitconfig"] == "ENCODED")
    }

    @Test func mountsTheCAFromASecretReadOnly() {
        var settings = Samples.settings(.standard)
        settings.caBundle = RunnerJob.CABundle(.secret("ghes-tls"), key: "root.pem")
        let text = RunnerJob.render(for: Samples.request, settings: settings).job.rendered()
        #expect(
            text.contains(
                #"{"name":"ca-bundle-source","secret":{"secretName":"ghes-tls","items":[{"key":"root.pem","path":"ca.crt"}]}}"#
            )
        )
        #expect(text.contains(#"{"name":"NODE_EXTRA_CA_CERTS","value":"/etc/kube-actions-runner/ca/ca.crt"}"#))
        #expect(
            text.contains(
                #"{"name":"SSL_CERT_FILE","value":"/etc/kube-actions-runner/ca-bundle/ca-certificates.crt"}"#
            )
        )
        // Only a proxy's keys join the Secret; without one it is as before.
        let secret = RunnerJob.render(for: Samples.request, settings: settings)
            .secret(jitConfig: "E", jobUID: "u", runnerID: 1, runnerName: "r")
        #expect(secret["stringData"] == .object([("jitconfig", "E")]))
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
