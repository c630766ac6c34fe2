/// How a runner pod is built; chosen with `RUNNER_MODE`.
package enum RunnerMode: String, Sendable, CaseIterable, CustomStringConvertible {
    /// The runner alone, non-root, no Docker: Pod Security `restricted`.
    case standard
    /// As standard, inside a user namespace (`hostUsers: false`).
    case userns
    /// A privileged `docker:dind` native sidecar: needs a `privileged` namespace.
    case dind
    /// The dind sidecar inside a user namespace, so dockerd's root is root only in the pod's namespace.
    case dindRootless = "dind-rootless"
    /// ARC's `kubernetes` container mode: the runner starts each job's containers as pods of their own through
    /// the runner image's container hooks, on a work volume claimed for the pod. No Docker, no privilege.
    case kubernetes

    package var description: String { rawValue }

    /// Whether the pod runs a Docker daemon beside the runner.
    package var hasDocker: Bool { self == .dind || self == .dindRootless }

    /// Whether the pod gets its own user namespace.
    package var usesUserNamespace: Bool { self == .userns || self == .dindRootless }

    /// Whether the runner starts job containers as pods through the container hooks.
    package var usesContainerHooks: Bool { self == .kubernetes }

    /// The Pod Security level the runner namespace must allow. In `kubernetes` mode the runner pod itself meets
    /// `restricted`, but the pods the hooks create for a job's containers run the workflow's images as they are
    /// (often as root), which `baseline` allows and `restricted` refuses.
    package var podSecurityLevel: String {
        switch self {
        case .standard, .userns: "restricted"
        case .kubernetes: "baseline"
        case .dind, .dindRootless: "privileged"
        }
    }
}
