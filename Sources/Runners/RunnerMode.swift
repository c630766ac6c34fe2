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

    package var description: String { rawValue }

    /// Whether the pod runs a Docker daemon beside the runner.
    package var hasDocker: Bool { self == .dind || self == .dindRootless }

    /// Whether the pod gets its own user namespace.
    package var usesUserNamespace: Bool { self == .userns || self == .dindRootless }

    /// The Pod Security level the runner namespace must allow.
    package var podSecurityLevel: String { hasDocker ? "privileged" : "restricted" }
}
