import Kubernetes

/// Why a runner Job's pod cannot run, or must wait: its own events and its pods' states.
extension Reconciler {
    enum Verdict {
        case none
        /// The pod must wait (an exceeded quota, a passing refusal): the Job stays.
        case wait(reason: String, detail: String)
        /// The pod cannot run: the Job goes, and its job is not provisioned again for a while (`failureHoldOff`).
        case reap(reason: String, detail: String)
    }

    /// Why a live Job's pod cannot run, or must wait, from its events (matched by the Job's uid, newer than its
    /// last pod) and its pods' states.
    func verdict(for job: JobSummary, in world: World, seenFor: (String) -> Duration) -> Verdict {
        /// A state that condemns the pod once it has lasted `deadline` since first seen (`key`); nil before.
        func reap(after deadline: Duration, _ key: String, _ reason: String, _ detail: (Int64) -> String) -> Verdict? {
            let seen = seenFor(key)
            return seen >= deadline ? .reap(reason: reason, detail: detail(seen.components.seconds)) : nil
        }
        let pods = world.pods?.filter { $0.jobName == job.name } ?? []
        let lastPod = pods.compactMap(\.createdAt).max()
        // Without the pods, an event cannot be told from one older than the pod that now runs: none is read.
        let events = (world.pods == nil ? [] : world.events ?? []).filter { event in
            guard let uid = job.uid, event.jobUID == uid else { return false }
            guard let lastPod else { return true }
            return (event.lastSeen ?? -.infinity) > lastPod
        }
        if let event = events.max(by: { ($0.lastSeen ?? 0) < ($1.lastSeen ?? 0) }) {
            if Self.isQuota(event.message) {
                return .wait(reason: "quota", detail: event.message)
            }
            if Self.isPermanentRefusal(event.message) {
                return .reap(reason: "failed_create", detail: event.message)
            }
            // Another refusal (an admission webhook that timed out, an API server too busy): the Job controller
            // retries, so it is a wait, until the pod start deadline.
            return reap(after: configuration.podStartDeadline, "refused:\(job.uid ?? job.name)", "failed_create") {
                "pod refused for \($0) s: \(event.message)"
            } ?? .wait(reason: "refused", detail: event.message)
        }
        for pod in pods {
            let key = pod.uid ?? pod.name
            for container in pod.containers {
                switch container.waitingReason {
                case "CrashLoopBackOff":
                    let detail = "pod \(pod.name): container \(container.name) in CrashLoopBackOff"
                    return .reap(reason: "crash_loop", detail: detail)
                case "RunContainerError":
                    let detail = "pod \(pod.name): container \(container.name) cannot run (RunContainerError)"
                    return .reap(reason: "run_container_error", detail: detail)
                default:
                    break
                }
            }
            let waiting = pod.containers.compactMap(\.waitingReason) + pod.waitingReasons
            if let pull = waiting.first(where: {
                ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerError"].contains($0)
            }),
                let verdict = reap(
                    after: configuration.podStartDeadline,
                    "pull:\(key)",
                    "image_pull",
                    {
                        "pod \(pod.name): \(pull) for \($0) s"
                    }
                )
            {
                return verdict
            }
            if let message = pod.unschedulable,
                let verdict = reap(
                    after: configuration.unschedulableDeadline,
                    "unschedulable:\(key)",
                    "unschedulable",
                    {
                        "pod \(pod.name): unschedulable for \($0) s: \(message)"
                    }
                )
            {
                return verdict
            }
            if let dind = pod.containers.first(where: { $0.isInit && $0.name == "dind" }), !dind.isReady,
                !dind.isTerminated,
                let verdict = reap(
                    after: configuration.dindReadyDeadline,
                    "dind:\(key)",
                    "dind_not_ready",
                    {
                        "pod \(pod.name): dockerd not ready after \($0) s"
                    }
                )
            {
                return verdict
            }
        }
        return .none
    }

    /// `exceeded quota` is a ResourceQuota refusing the pod for now: it is a wait, not a failure.
    static func isQuota(_ message: String) -> Bool {
        message.contains("exceeded quota")
    }

    /// A refusal the same pod would meet again: Pod Security, an invalid spec, an admission denial, another
    /// `forbidden` (a missing service account, a quota that requires limits).
    static func isPermanentRefusal(_ message: String) -> Bool {
        message.contains("violates PodSecurity") || message.contains(" is invalid")
            || message.contains("is forbidden") || message.contains("denied the request")
    }
}
