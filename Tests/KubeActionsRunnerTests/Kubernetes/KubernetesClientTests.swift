import Foundation
import Synchronization
import Testing

@testable import HTTPClient
@testable import Kubernetes
@testable import Support
@testable import TestSupport

@Suite struct KubernetesClientTests {
    let transport = RecordingTransport()
    let time = ManualClock()

    func client(
        credentials: KubernetesConnection.Credentials = .token(Secret("kube-token")),
        files: some FileReading = InMemoryFiles()
    )
        -> KubernetesClient
    {
        KubernetesClient(
            connection: KubernetesConnection(
                server: "https://10.0.0.1:6443",
                tls: TLSConfiguration(),
                credentials: credentials,
                namespace: nil,
                source: "test"
            ),
            transport: transport,
            files: files,
            clock: time
        )
    }

    @Test func createsAJobAndReturnsItsUID() async throws {
        transport.enqueue(201, #"{"kind":"Job","metadata":{"name":"runner-1","uid":"0b7f-uid"}}"#)
        let created = try await client().createJob(.object([("kind", "Job")]), namespace: "runners")
        #expect(created == CreatedObject(name: "runner-1", uid: "0b7f-uid"))
        let request = try #require(transport.requests.first)
        #expect(request.method == "POST")
        #expect(
            request.url
                == "https://10.0.0.1:6443/apis/batch/v1/namespaces/runners/jobs?fieldManager=kube-actions-runner"
        )
        #expect(request.header("Authorization") == "Bearer kube-token")
        #expect(request.header("Content-Type") == "application/json")
        #expect(request.bodyText == #"{"kind":"Job"}"#)
    }

    /// The created Job's name and uid are read without decoding the rest; an answer spelled otherwise (an escape)
    /// is decoded in full, and one without a uid is an unexpected answer either way.
    @Test func readsTheCreatedJobsIdentityWhateverItsSpelling() async throws {
        transport.enqueue(201, #"{"kind":"Job","metadata":{"name":"runner-1","uid":"0b7f\u002duid"}}"#)
        transport.enqueue(201, #"{"kind":"Job","metadata":{"name":"runner-1"},"spec":{"uid":"not-this"}}"#)
        transport.enqueue(201, #"{"metadata":{"name":"runner-1","uid":"first"},"metadata":{"name":"runner-1"}}"#)
        let created = try await client().createJob(.object([("kind", "Job")]), namespace: "runners")
        #expect(created == CreatedObject(name: "runner-1", uid: "0b7f-uid"))
        let error = await #expect(throws: KubernetesAPIError.self) {
            try await client().createJob(.object([("kind", "Job")]), namespace: "runners")
        }
        #expect(error?.kind == .unexpectedResponse)
        // A repeated `metadata` is the full decoder's to read (it keeps the first).
        let repeated = try await client().createJob(.object([("kind", "Job")]), namespace: "runners")
        #expect(repeated == CreatedObject(name: "runner-1", uid: "first"))
    }

    @Test(arguments: [
        ("k8s/status.409.alreadyexists.job.json", 409, KubernetesAPIError.Kind.alreadyExists),
        ("k8s/status.403.forbidden.rbac.json", 403, .forbidden),
        ("k8s/status.422.invalid.job.json", 422, .invalid),
        ("k8s/status.404.notfound.json", 404, .notFound),
    ])
    func turnsStatusBodiesIntoDistinctErrors(fixture: String, status: Int, kind: KubernetesAPIError.Kind) async throws {
        transport.enqueue(status, try Fixtures.text(fixture))
        do {
            _ = try await client().createJob(.object([]), namespace: "runners")
            Issue.record("expected an error")
        } catch {
            #expect(error.kind == kind && error.status == status)
            switch kind {
            case .forbidden:
                #expect(error.description.hasPrefix("Kubernetes denied create jobs.batch in namespace runners"))
                #expect(error.message.contains(#"cannot create resource "jobs" in API group "batch""#))
            case .invalid:
                #expect(
                    error.causes == [
                        #"spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never""#
                    ]
                )
            default: break
            }
        }
    }

    @Test func treatsServerErrorsAndOddBodiesAsUnavailable() async {
        transport.enqueue(503, "<html>upstream connect error</html>")
        let error = await #expect(throws: KubernetesAPIError.self) {
            _ = try await client().createJob(.object([]), namespace: "runners")
        }
        #expect(error?.kind == .unavailable && error?.message == "HTTP 503" && error?.isTransient == true)
    }

    @Test func rereadsTheTokenFileOnEveryCall() async throws {
        let files = MutableFiles(["/sa/token": "first\n"])
        let kubernetes = client(credentials: .tokenFile("/sa/token"), files: files)
        for _ in 0..<4 { transport.enqueue(200, #"{"items":[]}"#) }  // each listing: all Jobs, then the finished
        _ = try await kubernetes.listJobs(namespace: "n", labelSelector: "a=b", limit: 1)
        files.set("/sa/token", "rotated")
        _ = try await kubernetes.listJobs(namespace: "n", labelSelector: "a=b", limit: 1)
        #expect(
            transport.requests.map { $0.header("Authorization") } == [
                "Bearer first", "Bearer first", "Bearer rotated", "Bearer rotated",
            ]
        )
        files.set("/sa/token", nil)
        await #expect(throws: KubernetesAPIError.self) {
            try await kubernetes.listJobs(namespace: "n", labelSelector: "", limit: nil)
        }
    }

    @Test func listsJobsAsMetadataOnlyAndTheFinishedOnesByFieldSelector() async throws {
        transport.enqueue(
            200,
            #"""
            {"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":{},"items":[
              {"kind":"PartialObjectMetadata","metadata":{"name":"runner-1","labels":{"app":"github-runner"},
               "creationTimestamp":"2026-01-02T03:04:05Z"}},
              {"kind":"PartialObjectMetadata","metadata":{"name":"runner-2"}},
              {"kind":"PartialObjectMetadata","metadata":{"name":"runner-3"}}
            ]}
            """#
        )
        transport.enqueue(
            200,
            #"{"kind":"PartialObjectMetadataList","metadata":{},"items":[{"metadata":{"name":"runner-2"}}]}"#
        )
        let jobs = try await client().listJobs(
            namespace: "runners",
            labelSelector: "app.kubernetes.io/managed-by=kube-actions-runner",
            limit: nil
        )
        #expect(jobs.map(\.name) == ["runner-1", "runner-2", "runner-3"])
        #expect(jobs.map(\.isFinished) == [false, true, false])  // a failed Job (runner-3) looks unfinished
        #expect(jobs[0].labels == ["app": "github-runner"])
        #expect(jobs[0].createdAt == Timestamps.parse("2026-01-02T03:04:05Z"))
        let base =
            "https://10.0.0.1:6443/apis/batch/v1/namespaces/runners/jobs"
            + "?labelSelector=app.kubernetes.io/managed-by%3Dkube-actions-runner"
        #expect(
            transport.requests.map(\.url) == [
                base + "&limit=500", base + "&fieldSelector=status.successful%3D1&limit=500",
            ]
        )
        #expect(
            transport.requests.allSatisfy {
                $0.header("Accept") == "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            }
        )
    }

    @Test func readsOneJobByNameAsMetadataOnly() async throws {
        transport.enqueue(
            200,
            #"""
            {"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":{},"items":[
              {"kind":"PartialObjectMetadata","metadata":{"name":"runner-1","uid":"0b7f-uid",
               "annotations":{"kube-actions-runner/attempt":"5eed"}}}
            ]}
            """#
        )
        transport.enqueue(200, #"{"kind":"PartialObjectMetadataList","metadata":{},"items":[]}"#)
        let found = try await client().job(named: "runner-1", namespace: "runners")
        #expect(found == JobIdentity(uid: "0b7f-uid", annotations: ["kube-actions-runner/attempt": "5eed"]))
        #expect(try await client().job(named: "runner-2", namespace: "runners") == nil)
        #expect(
            transport.requests.map(\.url) == [
                "https://10.0.0.1:6443/apis/batch/v1/namespaces/runners/jobs?fieldSelector=metadata.name%3Drunner-1&limit=1",
                "https://10.0.0.1:6443/apis/batch/v1/namespaces/runners/jobs?fieldSelector=metadata.name%3Drunner-2&limit=1",
            ]
        )
        #expect(
            transport.requests.allSatisfy {
                $0.method == "GET"
                    && $0.header("Accept") == "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            }
        )
    }

    @Test func listsJobsInChunksFollowingTheContinueToken() async throws {
        transport.enqueue(
            200,
            #"{"kind":"JobList","metadata":{"continue":"eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ==","remainingItemCount":1},"items":[{"metadata":{"name":"runner-1"}},{"metadata":{"name":"runner-2"}}]}"#
        )
        transport.enqueue(
            200,
            #"{"kind":"JobList","metadata":{"continue":""},"items":[{"metadata":{"name":"runner-3"}}]}"#
        )
        transport.enqueue(200, #"{"items":[]}"#)  // none finished
        let jobs = try await client().listJobs(namespace: "runners", labelSelector: "a=b", limit: nil)
        #expect(jobs.map(\.name) == ["runner-1", "runner-2", "runner-3"])
        #expect(
            transport.requests.map(\.url) == [
                "https://10.0.0.1:6443/apis/batch/v1/namespaces/runners/jobs?labelSelector=a%3Db&limit=500",
                "https://10.0.0.1:6443/apis/batch/v1/namespaces/runners/jobs?labelSelector=a%3Db&limit=500&continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ%3D%3D",
                "https://10.0.0.1:6443/apis/batch/v1/namespaces/runners/jobs?labelSelector=a%3Db&fieldSelector=status.successful%3D1&limit=500",
            ]
        )
    }

    @Test func aLimitStopsTheChunksAndAnExpiredTokenIsAnError() async throws {
        transport.enqueue(200, #"{"metadata":{"continue":"next"},"items":[{"metadata":{"name":"runner-1"}}]}"#)
        transport.enqueue(200, #"{"items":[{"metadata":{"name":"runner-1"}}]}"#)
        let first = try await client().listJobs(namespace: "runners", labelSelector: "a=b", limit: 1)
        #expect(first.map(\.name) == ["runner-1"] && first.map(\.isFinished) == [true])
        #expect(transport.requests.count == 2)  // one page of Jobs (the limit), one of finished Jobs
        #expect(transport.requests[0].url.hasSuffix("&limit=1"))
        #expect(try await client().listJobs(namespace: "runners", labelSelector: "a=b", limit: 0).isEmpty)
        #expect(transport.requests.count == 2)

        transport.enqueue(200, #"{"metadata":{"continue":"stale"},"items":[{"metadata":{"name":"runner-1"}}]}"#)
        transport.enqueue(
            410,
            #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.","reason":"Expired","code":410}"#
        )
        await #expect(throws: KubernetesAPIError.self) {
            try await client().listJobs(namespace: "runners", labelSelector: "a=b", limit: nil)
        }
    }

    @Test func listsSecretsAsMetadataOnlyInChunks() async throws {
        transport.enqueue(
            200,
            #"{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":{"continue":"c2Vjb25k"},"items":[{"kind":"PartialObjectMetadata","metadata":{"name":"runner-1"}}]}"#
        )
        transport.enqueue(
            200,
            #"{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":{},"items":[{"kind":"PartialObjectMetadata","metadata":{"name":"runner-2","labels":{"kube-actions-runner/runner-id":"7"},"ownerReferences":[{"apiVersion":"batch/v1","kind":"Job","name":"runner-2","uid":"u-2","controller":true}]}}]}"#
        )
        let secrets = try await client().listSecrets(namespace: "runners", labelSelector: "a=b")
        #expect(secrets.map(\.name) == ["runner-1", "runner-2"])
        #expect(secrets[1].labels == ["kube-actions-runner/runner-id": "7"] && secrets[1].ownerUID == "u-2")
        #expect(secrets[0].labels.isEmpty && secrets[0].ownerUID == nil)
        #expect(
            transport.requests.map(\.url) == [
                "https://10.0.0.1:6443/api/v1/namespaces/runners/secrets?labelSelector=a%3Db&limit=500",
                "https://10.0.0.1:6443/api/v1/namespaces/runners/secrets?labelSelector=a%3Db&limit=500&continue=c2Vjb25k",
            ]
        )
        #expect(
            transport.requests.allSatisfy {
                $0.header("Accept") == "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            }
        )
    }

    @Test func deletesInTheBackgroundSoOwnedObjectsGoToo() async throws {
        transport.enqueue(200, #"{"kind":"Status","status":"Success"}"#)
        try await client().deleteJob(name: "runner-1", namespace: "runners")
        let request = try #require(transport.requests.first)
        #expect(request.method == "DELETE")
        #expect(request.url == "https://10.0.0.1:6443/apis/batch/v1/namespaces/runners/jobs/runner-1")
        #expect(request.bodyText == #"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}"#)
    }

    @Test func deletesExactlyTheJobItListedWithAUIDPrecondition() async throws {
        transport.enqueue(
            409,
            #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Operation cannot be fulfilled on jobs.batch \"runner-1\": Precondition failed: UID in precondition: a, UID in object meta: b","reason":"Conflict","details":{"name":"runner-1","group":"batch","kind":"jobs"},"code":409}"#
        )
        await #expect(throws: KubernetesAPIError.self) {
            try await client().deleteJob(name: "runner-1", namespace: "runners", uid: "a")
        }
        #expect(
            transport.requests.first?.bodyText
                == #"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background","preconditions":{"uid":"a"}}"#
        )
    }

    @Test func deletesExactlyThePodItListed() async throws {
        transport.enqueue(200, #"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"}}"#)
        try await client().deletePod(name: "p", namespace: "runners", uid: "uid-3")
        let request = try #require(transport.requests.first)
        #expect(request.method == "DELETE")
        #expect(request.url == "https://10.0.0.1:6443/api/v1/namespaces/runners/pods/p")
        #expect(request.bodyText == #"{"kind":"DeleteOptions","apiVersion":"v1","preconditions":{"uid":"uid-3"}}"#)
    }

    /// Every call: the method and URL sent, and the verb and resource a failure names (which the Role must grant).
    @Test func sendsEachCallToTheURLOfItsVerbAndResource() async throws {
        let lease = Lease(
            name: "leader",
            holderIdentity: "a",
            leaseDurationSeconds: 15,
            acquireTime: nil,
            renewTime: nil,
            leaseTransitions: nil
        )
        let vmi = KubernetesResource(
            group: "kubevirt.io",
            version: "v1",
            plural: "virtualmachineinstances",
            kind: "VirtualMachineInstance"
        )
        let configMaps = try #require(KubernetesResource(apiVersion: "v1", kind: "ConfigMap", plural: "configmaps"))
        typealias Call = @Sendable (KubernetesClient) async throws -> Void
        let calls: [(Call, method: String, path: String, verb: String, resource: String)] = [
            (
                { _ = try await $0.createJob(.object([]), namespace: "ns") }, "POST",
                "/apis/batch/v1/namespaces/ns/jobs?fieldManager=kube-actions-runner", "create", "jobs.batch"
            ),
            (
                { try await $0.createSecret(.object([]), namespace: "ns") }, "POST",
                "/api/v1/namespaces/ns/secrets?fieldManager=kube-actions-runner", "create", "secrets"
            ),
            (
                { try await $0.deleteJob(name: "runner-1", namespace: "ns", uid: "u") }, "DELETE",
                "/apis/batch/v1/namespaces/ns/jobs/runner-1", "delete", "jobs.batch"
            ),
            (
                { _ = try await $0.listJobs(namespace: "ns", labelSelector: "app=x,a!=b", limit: 7) }, "GET",
                "/apis/batch/v1/namespaces/ns/jobs?labelSelector=app%3Dx%2Ca%21%3Db&limit=7", "list", "jobs.batch"
            ),
            (
                { _ = try await $0.listSecrets(namespace: "ns", labelSelector: "kube-actions-runner/id") }, "GET",
                "/api/v1/namespaces/ns/secrets?labelSelector=kube-actions-runner/id&limit=500", "list", "secrets"
            ),
            (
                { _ = try await $0.listPods(namespace: "ns", labelSelector: "app=x") }, "GET",
                "/api/v1/namespaces/ns/pods?labelSelector=app%3Dx", "list", "pods"
            ),
            (
                { _ = try await $0.createObject(.object([]), resource: vmi, namespace: "ns") }, "POST",
                "/apis/kubevirt.io/v1/namespaces/ns/virtualmachineinstances?fieldManager=kube-actions-runner", "create",
                "virtualmachineinstances.kubevirt.io"
            ),
            (
                { try await $0.deleteObject(name: "runner-1", resource: vmi, namespace: "ns", uid: "u") }, "DELETE",
                "/apis/kubevirt.io/v1/namespaces/ns/virtualmachineinstances/runner-1", "delete",
                "virtualmachineinstances.kubevirt.io"
            ),
            (
                { _ = try await $0.listObjects(resource: vmi, namespace: "ns", labelSelector: "a=b") }, "GET",
                "/apis/kubevirt.io/v1/namespaces/ns/virtualmachineinstances?labelSelector=a%3Db&limit=500", "list",
                "virtualmachineinstances.kubevirt.io"
            ),
            (
                { _ = try await $0.createObject(.object([]), resource: configMaps, namespace: "ns") }, "POST",
                "/api/v1/namespaces/ns/configmaps?fieldManager=kube-actions-runner", "create", "configmaps"
            ),
            (
                { try await $0.deletePod(name: "runner-1-abcde-workflow", namespace: "ns", uid: "u") }, "DELETE",
                "/api/v1/namespaces/ns/pods/runner-1-abcde-workflow", "delete", "pods"
            ),
            (
                { _ = try await $0.listFailedCreateEvents(namespace: "ns") }, "GET",
                "/api/v1/namespaces/ns/events?fieldSelector=involvedObject.kind%3DJob%2Creason%3DFailedCreate", "list",
                "events"
            ),
            (
                { _ = try await $0.lease(name: "leader", namespace: "ns") }, "GET",
                "/apis/coordination.k8s.io/v1/namespaces/ns/leases/leader", "get", "leases.coordination.k8s.io"
            ),
            (
                { _ = try await $0.createLease(lease, namespace: "ns") }, "POST",
                "/apis/coordination.k8s.io/v1/namespaces/ns/leases", "create", "leases.coordination.k8s.io"
            ),
            (
                { _ = try await $0.updateLease(lease, namespace: "ns") }, "PUT",
                "/apis/coordination.k8s.io/v1/namespaces/ns/leases/leader", "update", "leases.coordination.k8s.io"
            ),
            (
                { _ = try await $0.configMap(name: "state", namespace: "ns") }, "GET",
                "/api/v1/namespaces/ns/configmaps/state", "get", "configmaps"
            ),
            (
                {
                    try await $0.saveConfigMap(
                        name: "state",
                        namespace: "ns",
                        ConfigMapData(resourceVersion: nil, data: [:])
                    )
                }, "POST", "/api/v1/namespaces/ns/configmaps", "create", "configmaps"
            ),
            (
                {
                    try await $0.saveConfigMap(
                        name: "state",
                        namespace: "ns",
                        ConfigMapData(resourceVersion: "7", data: [:])
                    )
                }, "PUT", "/api/v1/namespaces/ns/configmaps/state", "update", "configmaps"
            ),
        ]
        for call in calls {
            let transport = RecordingTransport()  // no answer: each call fails after sending one request
            let kubernetes = KubernetesClient(
                connection: KubernetesConnection(
                    server: "https://10.0.0.1:6443",
                    tls: TLSConfiguration(),
                    credentials: .none,
                    namespace: nil,
                    source: "test"
                ),
                transport: transport
            )
            do {
                try await call.0(kubernetes)
                Issue.record("expected a transport error for \(call.path)")
            } catch {
                let error = try #require(error as? KubernetesAPIError)
                #expect(error.kind == .transport)
                #expect(error.verb == call.verb && error.resource == call.resource, "\(call.path)")
            }
            let request = try #require(transport.requests.first)
            #expect(transport.requests.count == 1)
            #expect(request.method == call.method, "\(call.path)")
            #expect(request.url == "https://10.0.0.1:6443" + call.path)
        }
    }

    @Test func honoursTheAPIServersRetryAfter() async throws {
        transport.enqueue(
            429,
            #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Too many requests, please try again later.","reason":"TooManyRequests","details":{"retryAfterSeconds":30},"code":429}"#,
            headers: [("Retry-After", "30")]
        )
        let kubernetes = client()
        do {
            _ = try await kubernetes.listJobs(namespace: "runners", labelSelector: "a=b", limit: nil)
            Issue.record("expected 429")
        } catch {
            #expect(error.kind == .unavailable && error.retryAfterSeconds == 30)
        }
        // Inside the window: refused without a request.
        time.advance(by: .milliseconds(29_999))
        await #expect(throws: KubernetesAPIError.self) {
            try await kubernetes.listJobs(namespace: "runners", labelSelector: "a=b", limit: nil)
        }
        #expect(transport.requests.count == 1)
        // After it: calls again.
        time.advance(by: .milliseconds(1))
        transport.enqueue(201, #"{"kind":"Job","metadata":{"name":"runner-1","uid":"0b7f-uid"}}"#)
        _ = try await kubernetes.createJob(.object([("kind", "Job")]), namespace: "runners")
        #expect(transport.requests.count == 2)
    }

    /// A PodList as kube-apiserver sends it: labels, restartable init containers, waiting, running and terminated
    /// states, and a PodScheduled condition with the scheduler's message.
    @Test func decodesRunnerPodsFromAnAPIServerPodList() async throws {
        transport.enqueue(200, try Fixtures.text("k8s/podlist.runner-pods.json"))
        let pods = try await client().listPods(
            namespace: "github-runners-jobs",
            labelSelector: "app.kubernetes.io/managed-by=kube-actions-runner"
        )
        let request = try #require(transport.requests.first)
        #expect(request.method == "GET")
        #expect(request.url.hasPrefix("https://10.0.0.1:6443/api/v1/namespaces/github-runners-jobs/pods?"))
        #expect(request.url.contains("labelSelector=app.kubernetes.io/managed-by%3Dkube-actions-runner"))
        #expect(pods.map(\.name) == ["runner-289782451-x7k2p", "runner-289782452-q9d4m", "runner-289782453-h2v8n"])
        #expect(pods.map(\.jobName) == ["runner-289782451", "runner-289782452", "runner-289782453"])
        #expect(pods[0].uid == "5d0f8c1e-2b7a-4c39-9a0e-6f4f3c2b1a01")
        #expect(pods[0].createdAt == Timestamps.parse("2026-11-30T09:14:07Z"))
        #expect(pods[0].createdAt != nil)

        // The dind sidecar waits for its image; the runner waits for the sidecar.
        #expect(pods[0].waitingReasons.sorted() == ["ImagePullBackOff", "PodInitializing"])
        #expect(pods[0].unschedulable == nil)
        #expect(
            pods[0].containers == [
                ContainerSummary(name: "runner", waitingReason: "PodInitializing"),
                ContainerSummary(name: "dind", isInit: true, waitingReason: "ImagePullBackOff"),
            ]
        )

        // No node fits: no container statuses yet, the scheduler's message kept.
        #expect(pods[1].containers.isEmpty && pods[1].waitingReasons.isEmpty)
        #expect(pods[1].unschedulable?.hasPrefix("0/3 nodes are available: 3 Insufficient cpu.") == true)

        // The runner finished; its sidecar still runs and is ready.
        #expect(
            pods[2].containers == [
                ContainerSummary(name: "runner", isTerminated: true),
                ContainerSummary(name: "dind", isInit: true, isRunning: true, isReady: true),
            ]
        )
    }

    /// An EventList of the Job controller's FailedCreate events: the involved Job's uid and the last time it happened.
    @Test func decodesFailedCreateEventsFromAnAPIServerEventList() async throws {
        transport.enqueue(200, try Fixtures.text("k8s/eventlist.failedcreate.json"))
        let events = try await client().listFailedCreateEvents(namespace: "github-runners-jobs")
        let request = try #require(transport.requests.first)
        #expect(
            request.url
                == "https://10.0.0.1:6443/api/v1/namespaces/github-runners-jobs/events?fieldSelector=involvedObject.kind%3DJob%2Creason%3DFailedCreate"
        )
        #expect(events.count == 2)
        #expect(events.map(\.jobName) == ["runner-289782454", "runner-289782455"])
        #expect(
            events.map(\.jobUID) == ["3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a604", "4f5a6b7c-8d9e-4f0a-b1c2-d3e4f5a6b705"]
        )
        #expect(events.allSatisfy { $0.reason == "FailedCreate" })
        #expect(events[0].message.contains("exceeded quota: runner-quota"))
        #expect(events[1].message.contains("violates PodSecurity"))
        // lastTimestamp, not firstTimestamp: the quota refusal was repeated 41 s later.
        #expect(events[0].lastSeen == Timestamps.parse("2026-11-30T09:17:43Z"))
        #expect(events[0].lastSeen != nil)
    }
}
