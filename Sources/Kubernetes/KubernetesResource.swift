/// A namespaced resource of the API server other than the ones the service always uses: the object a custom runner
/// backend makes for each runner (a KubeVirt `VirtualMachineInstance`, a KRO instance such as `PodRunner`).
package struct KubernetesResource: Sendable, Hashable, CustomStringConvertible {
    /// The API group; empty for the core group.
    package var group: String
    package var version: String
    /// The resource's plural name in URLs and RBAC rules (`virtualmachineinstances`).
    package var plural: String
    /// The object's `kind` (`VirtualMachineInstance`).
    package var kind: String

    package init(group: String, version: String, plural: String, kind: String) {
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
    }

    /// From an object's `apiVersion` (`kubevirt.io/v1`, or `v1` for the core group), its kind and the plural.
    package init?(apiVersion: String, kind: String, plural: String) {
        let parts = apiVersion.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !kind.isEmpty, !plural.isEmpty, parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        switch parts.count {
        case 1: self.init(group: "", version: parts[0], plural: plural, kind: kind)
        case 2: self.init(group: parts[0], version: parts[1], plural: plural, kind: kind)
        default: return nil
        }
    }

    /// `group/version`, or the version alone for the core group.
    package var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }

    /// `plural.group` as RBAC names it (the plural alone for the core group).
    package var resourceName: String { group.isEmpty ? plural : "\(plural).\(group)" }

    package var description: String { "\(kind) (\(resourceName), \(apiVersion))" }
}

/// What the reapers need to know of an object a custom backend made for a runner.
package struct ObjectSummary: Sendable, Equatable {
    package var name: String
    package var labels: [String: String]
    /// `metadata.creationTimestamp`, seconds since the epoch (the API server's clock).
    package var createdAt: Double?
    package var uid: String?

    package init(name: String, labels: [String: String], createdAt: Double? = nil, uid: String? = nil) {
        self.name = name
        self.labels = labels
        self.createdAt = createdAt
        self.uid = uid
    }
}
