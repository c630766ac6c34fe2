/// How a runner pod is built; chosen with `RUNNER_MODE`.
public enum RunnerMode: String, Sendable, CaseIterable, CustomStringConvertible {
    /// The runner alone, non-root, no Docker: Pod Security `restricted`.
    case standard
    /// As standard, inside a user namespace (`hostUsers: false`).
    case userns
    /// A privileged `docker:dind` native sidecar: needs a `privileged` namespace.
    case dind
    /// The dind sidecar inside a user namespace, so dockerd's root is root only in the pod's namespace.
    case dindRootless = "dind-rootless"

    public var description: String { rawValue }

    /// Whether the pod runs a Docker daemon beside the runner.
    public var hasDocker: Bool { self == .dind || self == .dindRootless }

    /// Whether the pod gets its own user namespace.
    public var usesUserNamespace: Bool { self == .userns || self == .dindRootless }

    /// The Pod Security level the runner namespace must allow.
    public var podSecurityLevel: String { hasDocker ? "privileged" : "restricted" }
}
