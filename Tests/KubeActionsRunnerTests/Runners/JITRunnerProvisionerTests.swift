import Synchronization
import Testing

@testable import GitHub
@testable import Kubernetes
@testable import Observability
@testable import Runners
@testable import TestSupport

@Suite struct JITRunnerProvisionerTests {
    let github = FakeGitHubAPI()
    let kubernetes = FakeKubernetesAPI()
    let metrics = Metrics()
    let logs = LogCapture()
    /// Retry pauses take no time; `pauses.elapsed` is how long they were.
    let pauses = ImmediateClock()

    var provisioner: JITRunnerProvisioner { provisioner(clock: pauses) }

    func provisioner(clock: some Clock<Duration>) -> JITRunnerProvisioner {
        JITRunnerProvisioner.make(
            github: github,
            kubernetes: kubernetes,
            metrics: metrics,
            logs: logs,
            namespace: "github-runners",
            clock: clock
        )
    }

    func request(_ id: Int64) -> RunnerRequest {
        RunnerRequest(
            owner: "octo",
            repository: "repo",
            jobID: id,
            runID: 1,
            jobName: "build",
            labels: ["self-hosted"],
            deliveryID: "d"
        )
    }

    @Test func createsTheJobThenRegistersThenStoresTheSecret() async throws {
        github.queue(job: 7)
        #expect(try await provisioner.provision(request(7)) == .created(runnerJob: "runner-7"))
        #expect(kubernetes.jobNames == ["runner-7"] && kubernetes.secretNames == ["runner-7"])
        let runnerName = try #require(github.runners.values.first)
        #expect(runnerName.hasPrefix("runner-7-") && runnerName.count == "runner-7-".count + 5)
        let secret = try #require(kubernetes.state.withLock { $0.secrets["runner-7"] })
        #expect(secret["stringData"]?["jitconfig"] == .string("jit-100"))
        // The registration it was made for is recorded on the Secret; the registration carries the marker.
        #expect(secret["metadata"]?["labels"]?["kube-actions-runner/runner-id"] == "100")
        #expect(secret["metadata"]?["labels"]?["kube-actions-runner/runner-name"] == .string(runnerName))
        #expect(secret["metadata"]?["labels"]?["app.kubernetes.io/instance"] == "kar-github-runners")
        #expect(github.state.withLock { $0.runnerLabels[100] } == ["self-hosted", "kar-github-runners"])
        #expect(
            secret["metadata"]?["ownerReferences"] == [
                .object([
                    ("apiVersion", "batch/v1"), ("kind", "Job"), ("name", "runner-7"), ("uid", "uid-1"),
                    ("controller", true),
                ])
            ]
        )
        // The Job went first: the Secret names its UID.
        #expect(kubernetes.calls == ["create job runner-7", "create secret runner-7"])
        #expect(!logs.text.contains("jit-100"))
    }

    @Test func answersAlreadyProvisionedWhenTheJobExists() async throws {
        github.queue(job: 8)
        _ = try await provisioner.provision(request(8))
        #expect(try await provisioner.provision(request(8)) == .alreadyProvisioned(runnerJob: "runner-8"))
        #expect(github.runners.count == 1)
    }

    @Test func removesTheJobWhenGitHubSaysTheJobIsNoLongerQueued() async throws {
        github.queue(job: 9, status: "completed")
        #expect(try await provisioner.provision(request(9)) == .notQueued(status: "completed"))
        #expect(kubernetes.jobNames.isEmpty && github.runners.isEmpty)
    }

    @Test func concurrentRequestsForOneJobRegisterOneRunner() async throws {
        github.queue(job: 10)
        kubernetes.state.withLock { $0.createJobCallers = 8 }  // all eight ask for the Job before any exists
        let provisioner = self.provisioner
        let outcomes = try await withThrowingTaskGroup(of: ProvisionOutcome.self) { group in
            for _ in 0..<8 { group.addTask { try await provisioner.provision(request(10)) } }
            return try await group.reduce(into: [ProvisionOutcome]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == .created(runnerJob: "runner-10") }.count == 1)
        #expect(outcomes.filter { $0 == .alreadyProvisioned(runnerJob: "runner-10") }.count == 7)
        #expect(github.runners.count == 1)
    }

    @Test func runnerNameSuffixesAreFiveBase36CharactersAndSpreadOverTheAlphabet() {
        let suffixes = (0..<1000).map { _ in randomSuffix() }
        let alphabet = Set("abcdefghijklmnopqrstuvwxyz0123456789")
        #expect(suffixes.allSatisfy { $0.count == 5 && $0.allSatisfy(alphabet.contains) })
        #expect(Set(suffixes).count >= 998, "36^5 names: two clashes in 1,000 would be a broken generator")
        #expect(Set(suffixes.joined()) == alphabet)
        for position in 0..<5 {
            let used = Set(suffixes.map { Array($0)[position] })
            #expect(used.count >= 30, "position \(position) uses \(used.count) characters")
        }
    }

    @Test func triesANewRunnerNameWhenTheNameIsTaken() async throws {
        github.queue(job: 11)
        github.state.withLock { $0.jitFaults = [FakeGitHubAPI.error(.conflict, status: 409)] }
        #expect(try await provisioner.provision(request(11)) == .created(runnerJob: "runner-11"))
        #expect(github.calls.filter { $0.hasPrefix("jit runner-11-") }.count == 2)
        #expect(pauses.elapsed == .zero)  // a new name needs no pause
    }

    /// One retry, and only after its pause (100 to 300 ms, jittered) has passed.
    @Test func retriesATransientJobLookupOnceAfterAPause() async throws {
        let time = ManualClock()
        let provisioner = self.provisioner(clock: time)
        github.queue(job: 12)
        github.state.withLock { $0.jobFaults = [FakeGitHubAPI.error(.server, status: 502)] }
        let outcome = Task { try await provisioner.provision(request(12)) }
        try await time.waitForSleepers(1)
        let pause = try #require(time.sleeps.first)
        #expect(pause >= .milliseconds(100) && pause <= .milliseconds(300))
        time.advance(by: pause - .milliseconds(1))
        #expect(time.sleepers == 1 && github.calls.filter { $0 == "job 12" }.count == 1)
        time.advance(by: .milliseconds(1))
        #expect(try await outcome.value == .created(runnerJob: "runner-12"))
        #expect(github.calls.filter { $0 == "job 12" }.count == 2)

        github.state.withLock {
            $0.jobFaults = [FakeGitHubAPI.error(.server, status: 502), FakeGitHubAPI.error(.server, status: 502)]
        }
        github.queue(job: 13)
        await #expect(throws: ProvisioningError(status: 502, reason: "GitHub answered 502")) {
            try await self.provisioner.provision(request(13))
        }
        #expect(!kubernetes.jobNames.contains("runner-13"))
        #expect(pauses.elapsed >= .milliseconds(100) && pauses.elapsed <= .milliseconds(300))  // one retry only
    }

    @Test func aFailedSecretRemovesTheRegistrationAndTheJob() async throws {
        github.queue(job: 14)
        kubernetes.state.withLock {
            // Transient failures get one retry: two in a row fail the delivery.
            $0.createSecretFaults = Array(
                repeating: FakeKubernetesAPI.error(.unavailable, status: 500, resource: "secrets"),
                count: 2
            )
        }
        await #expect(throws: ProvisioningError.self) { try await provisioner.provision(request(14)) }
        #expect(github.runners.isEmpty && kubernetes.jobNames.isEmpty)
        #expect(github.calls.contains("delete runner 100"))
    }

    @Test func aFailedRegistrationRemovesTheJob() async throws {
        github.queue(job: 15)
        github.state.withLock {
            $0.jitFaults = [
                FakeGitHubAPI.error(
                    .forbidden,
                    status: 403,
                    endpoint: "POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig"
                )
            ]
        }
        await #expect(
            throws: ProvisioningError(
                status: 502,
                reason: "the GitHub token may not POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig"
            )
        ) {
            try await provisioner.provision(request(15))
        }
        #expect(kubernetes.jobNames.isEmpty && github.runners.isEmpty)
    }

    @Test(
        arguments: [
            (KubernetesAPIError.Kind.forbidden, 403, 502, "Kubernetes RBAC denies create jobs.batch in ns"),
            (.unavailable, 503, 503, "Kubernetes API unavailable: injected"),
            (.transport, nil, 503, "Kubernetes API unavailable: injected"),
            (.invalid, 422, 502, "Kubernetes rejected the jobs.batch: injected"),
        ] as [(KubernetesAPIError.Kind, Int?, Int, String)]
    )
    func aFailedJobRegistersNoRunner(kind: KubernetesAPIError.Kind, status: Int?, answer: Int, reason: String) async {
        github.queue(job: 16)
        kubernetes.state.withLock {
            $0.createJobFaults = Array(repeating: FakeKubernetesAPI.error(kind, status: status), count: 2)
        }
        await #expect(throws: ProvisioningError(status: answer, reason: reason)) {
            try await provisioner.provision(request(16))
        }
        #expect(github.runners.isEmpty)
        #expect(!github.calls.contains { $0.hasPrefix("jit") })
    }

    @Test func mapsRateLimitsTo503WithTheResetTime() {
        let error = GitHubAPIError(
            endpoint: "GET x",
            kind: .rateLimited,
            status: 403,
            requestID: nil,
            message: "m",
            retryAt: 1_700_000_600,
            acceptedPermissions: nil
        )
        #expect(
            JITRunnerProvisioner.provisioningError(error)
                == ProvisioningError(status: 503, reason: "GitHub rate limit reached; resets at 2023-11-14T22:23:20Z")
        )
    }

    /// Credential failures name what to fix: an owner without a token, a refused App JWT, an App not installed.
    @Test(arguments: [
        (
            GitHubAPIError(
                endpoint: "credentials for {owner}",
                kind: .unauthorized,
                message: "no GitHub token for owner o"
            ),
            "no GitHub token for owner o"
        ),
        (
            GitHubAPIError(
                endpoint: "POST /app/installations/{installation_id}/access_tokens",
                kind: .unauthorized,
                status: 401,
                message: "GitHub rejected the App's JWT"
            ),
            "GitHub rejected the GitHub App's JWT (401)"
        ),
        (
            GitHubAPIError(
                endpoint: "GET /repos/{owner}/{repo}/installation",
                kind: .notFound,
                status: 404,
                message: "the GitHub App is not installed on o/r"
            ),
            "the GitHub App is not installed on o/r"
        ),
        (
            GitHubAPIError(
                endpoint: "GET /repos/{owner}/{repo}/actions/jobs/{job_id}",
                kind: .unauthorized,
                status: 401,
                message: "Bad credentials"
            ),
            "GitHub rejected the token (401)"
        ),
    ])
    func namesWhatToFixWhenCredentialsFail(error: GitHubAPIError, reason: String) {
        #expect(JITRunnerProvisioner.provisioningError(error) == ProvisioningError(status: 502, reason: reason))
    }

    @Test func isReadyOnceKubernetesAnswered() async {
        #expect(await provisioner.readiness() == .ready)  // the first check lists jobs
        #expect(kubernetes.calls.contains("list jobs"))
    }

    @Test func replacesARunnerThatTookAnotherJobWithLabelsFromGitHub() async throws {
        github.queue(job: 20, labels: ["self-hosted", "gpu"])
        var request = RunnerRequest(
            owner: "octo",
            repository: "repo",
            jobID: 20,
            runID: 0,
            jobName: "",
            labels: [],
            deliveryID: "d"
        )
        request.replacing = 21
        #expect(try await provisioner.provision(request) == .created(runnerJob: "runner-20-after-21"))
        let runnerName = try #require(github.runners.values.first)
        #expect(runnerName.hasPrefix("runner-20-after-21-"))
        #expect(RunnerName(parsing: runnerName, as: .registration)?.jobID == 20)
        #expect(github.calls.contains { $0.hasPrefix("jit runner-20-after-21-") })
        #expect(try await provisioner.provision(request) == .alreadyProvisioned(runnerJob: "runner-20-after-21"))
    }

    @Test func retriesOneTransientFailureOfEachCall() async throws {
        github.queue(job: 40)
        github.state.withLock { $0.jitFaults = [FakeGitHubAPI.error(.server, status: 502)] }
        kubernetes.state.withLock {
            $0.createJobFaults = [FakeKubernetesAPI.error(.transport, status: nil)]
            $0.createSecretFaults = [FakeKubernetesAPI.error(.unavailable, status: 503, resource: "secrets")]
        }
        #expect(try await provisioner.provision(request(40)) == .created(runnerJob: "runner-40"))
        #expect(kubernetes.jobNames == ["runner-40"] && kubernetes.secretNames == ["runner-40"])
        #expect(github.runners.count == 1)
        #expect(pauses.elapsed >= .milliseconds(300) && pauses.elapsed <= .milliseconds(900))  // a pause before each
    }

    /// The API server's queue held the create past the client's timeout and then made the Job: the retry's 409 is
    /// this attempt's own Job (its attempt annotation says so), so the runner is registered and the Secret written
    /// at once, not left to the reaper and the reconciler.
    @Test func goesOnWithItsOwnJobWhenTheCreatesAnswerWasLost() async throws {
        github.queue(job: 41)
        kubernetes.state.withLock { $0.createJobAnswersLost = 1 }
        #expect(try await provisioner.provision(request(41)) == .created(runnerJob: "runner-41"))
        #expect(
            kubernetes.calls == [
                "create job runner-41", "create job runner-41", "read job runner-41", "create secret runner-41",
            ]
        )
        let uid = try #require(kubernetes.uid(of: "runner-41"))
        let secret = try #require(kubernetes.state.withLock { $0.secrets["runner-41"] })
        guard case .array(let owners)? = secret["metadata"]?["ownerReferences"] else {
            Issue.record("the Secret has no owner")
            return
        }
        #expect(owners.first?["uid"] == .string(uid))
        #expect(github.runners.count == 1)
        #expect(pauses.elapsed >= .milliseconds(100) && pauses.elapsed <= .milliseconds(300))  // one pause only
    }

    /// The same 409 after a lost answer, but the Job is another attempt's (another delivery or replica made it in
    /// between): the lock holds, nothing is registered.
    @Test func aLostAnswerDoesNotClaimAnotherAttemptsJob() async throws {
        github.queue(job: 42)
        kubernetes.state.withLock { $0.createJobFaults = [FakeKubernetesAPI.error(.transport, status: nil)] }
        kubernetes.addJob("runner-42", labels: [:])  // made by someone else while the first create was lost
        #expect(try await provisioner.provision(request(42)) == .alreadyProvisioned(runnerJob: "runner-42"))
        #expect(kubernetes.calls == ["create job runner-42", "create job runner-42", "read job runner-42"])
        #expect(github.runners.isEmpty && kubernetes.secretNames.isEmpty)
    }

    @Test func eachAttemptAnnotatesItsJobWithItsOwnToken() async throws {
        github.queue(job: 43)
        github.queue(job: 44)
        _ = try await provisioner.provision(request(43))
        _ = try await provisioner.provision(request(44))
        let tokens = kubernetes.state.withLock { state in
            ["runner-43", "runner-44"].compactMap {
                state.jobs[$0]?.manifest["metadata"]?["annotations"]?[JITRunnerProvisioner.attemptAnnotation]
            }
        }
        #expect(tokens.count == 2 && tokens[0] != tokens[1])
        // The rendered annotations stay, the token comes after them.
        let annotations = kubernetes.state.withLock { $0.jobs["runner-43"]?.manifest["metadata"]?["annotations"] }
        #expect(annotations?["kube-actions-runner/run-id"] == "1")
    }

    @Test func replacesOnlyARunnerThisDeploymentRecordedOnOneOfItsJobs() async throws {
        github.queue(job: 30)
        github.queue(job: 31)
        #expect(try await provisioner.provision(request(30)) == .created(runnerJob: "runner-30"))
        let ours = try #require(github.runners.values.first)
        var request = request(30)
        request.labels = []
        request.replacing = 31
        // A name shaped like ours, recorded on no Job of ours (another deployment's, or a hand-made one).
        request.takenByRunner = "runner-30-zzzzz"
        #expect(try await provisioner.provision(request) == .foreignRunner(name: "runner-30-zzzzz"))
        #expect(kubernetes.jobNames == ["runner-30"] && github.runners.count == 1)
        // The registration recorded on runner-30: a replacement.
        request.takenByRunner = ours
        #expect(try await provisioner.provision(request) == .created(runnerJob: "runner-30-after-31"))
    }

    /// Leadership checked just before each mutating call: lost after the Job, or after the registration, the attempt
    /// stops there and removes what it made.
    @Test(arguments: [1, 2])
    func stopsAndCleansUpWhenLeadershipIsLostMidway(checksPassed: Int) async throws {
        github.queue(job: 60)
        let checks = Counter()
        await #expect(throws: ProvisioningError.self) {
            try await provisioner.provision(request(60), while: { checks.next() < checksPassed })
        }
        #expect(kubernetes.jobNames.isEmpty && kubernetes.secretNames.isEmpty && github.runners.isEmpty)
        #expect(kubernetes.calls.contains("create job runner-60"))
        #expect(github.calls.contains { $0.hasPrefix("jit ") } == (checksPassed == 2))
    }

    final class Counter: Sendable {
        let value = Mutex(0)
        func next() -> Int {
            value.withLock { value in
                defer { value += 1 }; return value
            }
        }
    }
}

/// `RUNNER_SCOPE=org`: runners registered to the job's organization, in a group named by `RUNNER_GROUP`.
@Suite struct OrganizationRunnerProvisioningTests {
    let github = FakeGitHubAPI()
    let kubernetes = FakeKubernetesAPI()
    let logs = LogCapture()

    func provisioner(group: String?) -> JITRunnerProvisioner {
        JITRunnerProvisioner(
            github: github,
            kubernetes: kubernetes,
            settings: Samples.settings(.standard),
            runnerGroupID: 1,
            monitor: ClusterMonitor(kubernetes: kubernetes, namespace: "ns", metrics: Metrics(), logger: logs.logger()),
            logger: logs.logger(),
            scope: .organization,
            runnerGroup: group
        )
    }

    func request(_ id: Int64, owner: String = "octo") -> RunnerRequest {
        RunnerRequest(
            owner: owner,
            repository: "repo",
            jobID: id,
            runID: 1,
            jobName: "build",
            labels: ["self-hosted"],
            deliveryID: nil
        )
    }

    @Test func registersInTheNamedGroupResolvedOncePerOrganization() async throws {
        github.state.withLock {
            $0.runnerGroups["octo"] = [
                RunnerGroup(id: 1, name: "Default", isDefault: true), RunnerGroup(id: 5, name: "k8s"),
            ]
            $0.runnerGroups["other"] = [RunnerGroup(id: 9, name: "K8s")]
        }
        for id in [7, 8, 9] as [Int64] { github.queue(job: id) }
        let provisioner = provisioner(group: "k8s")
        #expect(try await provisioner.provision(request(7)) == .created(runnerJob: "runner-7"))
        #expect(try await provisioner.provision(request(8)) == .created(runnerJob: "runner-8"))
        #expect(try await provisioner.provision(request(9, owner: "other")) == .created(runnerJob: "runner-9"))
        let calls = github.calls
        #expect(calls.filter { $0 == "runner groups octo" }.count == 1)
        #expect(calls.filter { $0 == "runner groups other" }.count == 1)
        #expect(
            calls.filter { $0.hasPrefix("jit org octo runner-7-") || $0.hasPrefix("jit org octo runner-8-") }.count == 2
        )
        let state = github.state.withLock { $0 }
        #expect(state.runnerGroupOf.values.sorted() == [5, 5, 9])
        #expect(Set(state.runnerOrganization.values) == ["octo", "other"])
        // Organization runners are listed at the organization, not at the repository.
        #expect(try await github.runners(owner: "octo", repo: "repo", scope: .organization).count == 2)
        #expect(try await github.runners(owner: "octo", repo: "repo").isEmpty)
    }

    @Test func aGroupNameTheOrganizationLacksFailsTheDeliveryAndLeavesNothing() async throws {
        github.queue(job: 7)
        await #expect {
            try await provisioner(group: "gpu").provision(request(7))
        } throws: { error in
            (error as? ProvisioningError)?.reason.contains(#"no runner group named "gpu""#) == true
        }
        #expect(kubernetes.jobNames.isEmpty && github.runners.isEmpty)
    }

    @Test func aFailedSecretRemovesTheOrganizationRegistration() async throws {
        github.queue(job: 7)
        kubernetes.state.withLock {
            $0.createSecretFaults = Array(
                repeating: FakeKubernetesAPI.error(.unavailable, status: 500, resource: "secrets"),
                count: 2
            )
        }
        await #expect(throws: ProvisioningError.self) { try await provisioner(group: nil).provision(request(7)) }
        #expect(github.calls.contains("delete org runner 100") && github.runners.isEmpty)
        #expect(github.state.withLock { $0.runnerGroupOf[100] } == 1)
    }
}
