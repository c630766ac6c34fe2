import Foundation
import Testing

@testable import App
@testable import Runners
@testable import Support
@testable import TestSupport

@Suite struct RenderTests {
    /// The bundled delivery's `runs-on` is `ubuntu-latest`.
    private let environment = ["LABEL_MATCHERS": "ubuntu-latest"]

    private func fixturePayload() throws -> App.Render.Source {
        .payload(Array(try Fixtures.text("github/workflow_job.queued.payload.json").utf8))
    }

    /// Compares with the reviewed golden file; `UPDATE_GOLDEN=1` rewrites it (then review the diff).
    @Test(arguments: App.Render.Format.allCases)
    func rendersTheReviewedJobAndSecretForTheFixtureDelivery(format: App.Render.Format) throws {
        let rendered = try App.Render.manifests(
            for: try fixturePayload(),
            format: format,
            environment: environment,
            files: InMemoryFiles()
        )
        let path = "golden/render.queued.\(format.rawValue)"
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try Data(rendered.utf8).write(to: Fixtures.directory.appendingPathComponent(path))
        }
        #expect(rendered == (try Fixtures.text(path)))
    }

    /// Each profile of the example file, as `render` prints it; reviewed golden files (`UPDATE_GOLDEN=1` rewrites).
    @Test(arguments: [
        ("arm64", ["self-hosted", "linux", "arm64"]), ("docker", ["self-hosted", "docker"]),
        ("gpu", ["self-hosted", "gpu"]), ("default", ["self-hosted", "linux"]),
    ])
    func rendersEachProfileOfTheExampleFile(profile: String, labels: [String]) throws {
        let path = "/etc/kube-actions-runner/profiles/profiles.yaml"
        let rendered = try App.Render.manifests(
            for: .labels(labels, owner: "octo-org", repository: "api", jobID: 42),
            format: .yaml,
            environment: ["PROFILES_FILE": path, "NAMESPACE": "github-runners-jobs"],
            files: InMemoryFiles([path: try Fixtures.text("profiles/profiles.yaml")])
        )
        #expect(rendered.contains("# Profile \(profile) (PROFILES_FILE, profile "))
        let golden = "golden/render.profile-\(profile).yaml"
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try Data(rendered.utf8).write(to: Fixtures.directory.appendingPathComponent(golden))
        }
        #expect(rendered == (try Fixtures.text(golden)))
    }

    @Test func namesWhyNoProfileTakesALabelSet() throws {
        let path = "/etc/kube-actions-runner/profiles/profiles.yaml"
        #expect(
            throws: App.Render.Failure(
                exitCode: 1,
                description: "labels [self-hosted, tpu] are taken by no profile of PROFILES_FILE: the service would"
                    + " answer labels_do_not_match\n"
                    + "  profile arm64: matcher 1 'self-hosted+arm64' needs all of self-hosted, arm64: missing arm64\n"
                    + "  profile docker: matcher 1 'self-hosted+docker' needs all of self-hosted, docker: missing"
                    + " docker\n"
                    + "  profile gpu: matcher 1 'self-hosted+gpu' needs all of self-hosted, gpu: missing gpu\n"
                    + "  profile default: its runners do not carry tpu"
            )
        ) {
            try App.Render.manifests(
                for: .labels(["self-hosted", "tpu"], owner: "o", repository: "r", jobID: 1),
                format: .yaml,
                environment: ["PROFILES_FILE": path],
                files: InMemoryFiles([path: try Fixtures.text("profiles/profiles.yaml")])
            )
        }
    }

    /// The Job is the provisioner's, byte for byte, and the Secret is the provisioner's without what only GitHub and
    /// the API server know.
    @Test func rendersWhatTheProvisionerRenders() throws {
        let rendered = try App.Render.manifests(
            for: try fixturePayload(),
            format: .json,
            environment: environment,
            files: InMemoryFiles()
        )
        let list = try JSONSerialization.jsonObject(with: Data(rendered.utf8)) as? [String: Any]
        let items = list?["items"] as? [[String: Any]] ?? []
        #expect(items.map { $0["kind"] as? String } == ["Job", "Secret"])

        let configuration = try App.Render.configuration(environment: environment, files: InMemoryFiles())
        let request = RunnerRequest(
            owner: "Octocoders",
            repository: "Hello-World",
            jobID: 289_782_451,
            runID: 2_202_229_078,
            jobName: "update",
            labels: ["ubuntu-latest"],
            deliveryID: nil
        )
        let job = RunnerJob.render(for: request, settings: RunnerJob.Settings(configuration))
        let expected = try JSONSerialization.jsonObject(with: Data(job.job.rendered().utf8)) as? NSDictionary
        #expect((items.first as NSDictionary?) == expected)
        let metadata = items.last?["metadata"] as? [String: Any]
        #expect(metadata?["ownerReferences"] == nil)
        #expect(metadata?["name"] as? String == "runner-289782451")
    }

    @Test func neverShowsTheJITConfigOrAProxyCredential() throws {
        var environment = environment
        environment["HTTPS_PROXY"] = "http://user:proxy-password@proxy.internal:3128"
        for format in App.Render.Format.allCases {
            let rendered = try App.Render.manifests(
                for: try fixturePayload(),
                format: format,
                environment: environment,
                files: InMemoryFiles()
            )
            #expect(rendered.contains("<redacted: the JIT config GitHub issues>"))
            #expect(rendered.contains("<redacted: https_proxy>"))
            #expect(!rendered.contains("proxy-password"))
            #expect(!rendered.contains("ENCODED"))
        }
    }

    @Test func rendersALabelSetForTheGivenRepository() throws {
        let rendered = try App.Render.manifests(
            for: .labels(["self-hosted", "linux"], owner: "octo-org", repository: "api", jobID: 42),
            format: .yaml,
            environment: ["RUNNER_MODE": "standard", "NAMESPACE": "runners"],
            files: InMemoryFiles()
        )
        #expect(rendered.contains("  name: runner-42\n  namespace: runners\n"))
        #expect(rendered.contains("kube-actions-runner/repository: octo-org/api"))
        #expect(rendered.contains("kube-actions-runner/mode: standard"))
        // A string YAML would read as a number stays a string.
        #expect(rendered.contains("kube-actions-runner/job-id: \"42\""))
    }

    @Test func namesEveryMatcherALabelSetFails() {
        #expect(
            throws: App.Render.Failure(
                exitCode: 1,
                description: "labels [linux, arm64] match no LABEL_MATCHERS matcher: the service would answer"
                    + " labels_do_not_match\n"
                    + "  matcher 1 'linux+x64' needs all of linux, x64: missing x64\n"
                    + "  matcher 2 'gpu' needs gpu: missing"
            )
        ) {
            try App.Render.manifests(
                for: .labels(["linux", "arm64"], owner: "o", repository: "r", jobID: 1),
                format: .yaml,
                environment: ["LABEL_MATCHERS": "linux+x64;gpu"],
                files: InMemoryFiles()
            )
        }
    }

    @Test func saysWhatTheServiceWouldAnswerInsteadOfProvisioning() throws {
        let payload = try fixturePayload()
        do {
            _ = try App.Render.manifests(
                for: payload,
                format: .yaml,
                environment: ["LABEL_MATCHERS": "ubuntu-latest", "ALLOWED_OWNERS": "octo-org"],
                files: InMemoryFiles()
            )
            Issue.record("expected not_allowed")
        } catch {
            #expect(error.exitCode == 1)
            #expect(error.description.contains("the service would answer not_allowed"))
        }
        do {
            _ = try App.Render.manifests(
                for: .payload(Array(#"{"action":"queued"}"#.utf8)),
                format: .yaml,
                environment: environment,
                files: InMemoryFiles()
            )
            Issue.record("expected an unusable payload")
        } catch {
            #expect(error.exitCode == 1)
            #expect(error.description.hasPrefix("not a workflow_job delivery: invalid payload: missing field"))
        }
    }

    /// The configuration is `serve`'s, without the credentials: a problem in it is exit 2, as for `serve`.
    @Test func needsNoCredentialsButAValidConfiguration() throws {
        #expect(throws: Never.self) {
            try App.Render.manifests(
                for: .labels(["self-hosted"], owner: "o", repository: "r", jobID: 1),
                format: .yaml,
                environment: [:],
                files: InMemoryFiles()
            )
        }
        do {
            _ = try App.Render.manifests(
                for: .labels(["self-hosted"], owner: "o", repository: "r", jobID: 1),
                format: .yaml,
                environment: ["RUNNER_MODE": "vm"],
                files: InMemoryFiles()
            )
            Issue.record("expected an invalid configuration")
        } catch {
            #expect(error.exitCode == 2)
            #expect(error.description.contains("RUNNER_MODE: 'vm' is not one of"))
        }
        #expect(throws: App.Render.Failure.self) {
            try App.Render.manifests(
                for: .labels(["self-hosted"], owner: "o", repository: "r", jobID: 1),
                format: .yaml,
                environment: ["DRY_RUN": "maybe"],
                files: InMemoryFiles()
            )
        }
    }

    /// As for `serve`: without `NAMESPACE`, the kubeconfig context's namespace applies.
    @Test func takesTheNamespaceServeWouldTake() throws {
        let kubeconfig = """
            apiVersion: v1
            kind: Config
            current-context: c
            clusters: [{name: k, cluster: {server: "https://127.0.0.1:6443"}}]
            contexts: [{name: c, context: {cluster: k, user: u, namespace: from-context}}]
            users: [{name: u, user: {token: kube-token}}]
            """
        let rendered = try App.Render.manifests(
            for: .labels(["self-hosted"], owner: "o", repository: "r", jobID: 1),
            format: .yaml,
            environment: ["KUBECONFIG": "/k"],
            files: InMemoryFiles(["/k": kubeconfig])
        )
        #expect(rendered.contains("  namespace: from-context\n"))
    }
}
