import Kubernetes
import Support
import Synchronization

/// One runner shape: which jobs it takes, the labels its runners register with, and how their pods are built.
///
/// Built from already-decoded values (the App reads `PROFILES_FILE`); the Runners layer renders it and never sees
/// YAML. The environment alone makes one profile (`name` nil) that takes what `LABEL_MATCHERS` takes, registers the
/// job's own labels and renders exactly the Job the environment describes.
package struct RunnerProfile: Sendable {
    /// The profile's name in the file; nil for the environment's own profile.
    package var name: String?
    /// Which jobs it takes (the `LABEL_MATCHERS` syntax).
    package var matcher: LabelMatcher
    /// The labels its runners register with. Nil: the job's own labels (the environment's behaviour). Set: the
    /// profile takes only jobs whose every label is among them, so its runner can take the job and never claims a
    /// label it has not (a job asking for `gpu` does not get a plain pod registered as `gpu`).
    package var runnerLabels: [String]?
    /// Mode, images, namespace, owner label and the other settings shared with the environment.
    package var settings: RunnerJob.Settings
    /// What the profile adds to the pod.
    package var pod: RunnerJob.PodCustomization
    /// Runner Jobs of this profile that may be active at once; nil: no cap.
    package var maxRunners: Int?
    /// A partial pod template merged over the rendered one (`RunnerJob.PodCustomization.merge`).
    package var podTemplatePatch: JSONValue?
    /// Idle runners kept registered ahead of jobs; nil: none.
    package var warmPool: WarmPool?

    package init(
        name: String?,
        matcher: LabelMatcher,
        runnerLabels: [String]? = nil,
        settings: RunnerJob.Settings,
        pod: RunnerJob.PodCustomization = .init(),
        maxRunners: Int? = nil,
        podTemplatePatch: JSONValue? = nil,
        warmPool: WarmPool? = nil
    ) {
        self.name = name
        self.matcher = matcher
        self.runnerLabels = runnerLabels
        self.settings = settings
        self.pod = pod
        self.maxRunners = maxRunners
        self.podTemplatePatch = podTemplatePatch
        self.warmPool = warmPool
    }

    /// The label of a profile's runner Jobs and pods naming it (the caps count Jobs by it).
    package static let profileLabel = "kube-actions-runner/profile"

    /// How `render` and logs name it.
    package var displayName: String { name ?? "(environment)" }

    /// Whether it takes a job with these `runs-on` labels: its matcher matches, and its runners would carry them all.
    package func takes(_ jobLabels: [String]) -> Bool {
        matcher.matches(jobLabels) && uncovered(jobLabels).isEmpty
    }

    /// The job's labels its runners would not carry (always none when it registers the job's labels).
    package func uncovered(_ jobLabels: [String]) -> [String] {
        guard let runnerLabels else { return [] }
        let carried = Set(runnerLabels.map { $0.trimmingOWS().asciiLowercased })
        return jobLabels.filter { !carried.contains($0.trimmingOWS().asciiLowercased) }
    }

    /// The labels a runner for a job with `jobLabels` registers with, plus this deployment's marker.
    package func registrationLabels(for jobLabels: [String]) -> [String] {
        var labels = runnerLabels ?? jobLabels
        if !labels.contains(where: { $0.lowercased() == settings.ownerLabel.lowercased() }) {
            labels.append(settings.ownerLabel)
        }
        return labels
    }

    /// The Job for `request`: the settings' rendering, this profile's customizations, then its patch, with the
    /// service's own fields put back over whatever the patch said.
    package func render(for request: RunnerRequest) -> RunnerJob {
        // A custom backend's object is no pod: the file refuses pod settings beside a backend. Its
        // `${RUNNER_LABELS}` are the labels the runner registers with, and it carries the profile's label as a Job
        // does, which the cap and the warm pool count by.
        if settings.backend != nil {
            var registering = request
            registering.labels = registrationLabels(for: request.labels)
            var object = RunnerJob.render(for: registering, settings: settings)
            if let name { object.labelObject(profile: name) }
            return object
        }
        var job = RunnerJob.render(for: request, settings: settings)
        guard name != nil || !pod.isEmpty || podTemplatePatch != nil else { return job }
        job.customize(with: pod, profile: name, patch: podTemplatePatch)
        return job
    }
}

/// Whether a job with these labels is this service's: `LabelMatcher` for one matcher, `RunnerProfiles` for profiles.
package protocol JobMatching: Sendable {
    func matches(_ jobLabels: [String]) -> Bool
    /// The profiles' warm pools.
    var warmPools: [WarmPool] { get }
    /// The resources of every custom backend the profiles have named in this process's life (a profile removed by a
    /// reload may have left objects the reapers must still see).
    var customResources: [KubernetesResource] { get }
    /// Whether a profile in this process's life made runners whose container hooks start pods of their own
    /// (`kubernetes` mode), whatever the environment's mode: the reaper of the pods they leave behind must run.
    var usesContainerHooks: Bool { get }
}

extension JobMatching {
    package var warmPools: [WarmPool] { [] }
    package var customResources: [KubernetesResource] { [] }
    package var usesContainerHooks: Bool { false }
}

extension LabelMatcher: JobMatching {}

/// The profiles in force, first match wins.
package struct RunnerProfiles: Sendable, JobMatching {
    package var profiles: [RunnerProfile]

    package init(_ profiles: [RunnerProfile]) {
        self.profiles = profiles
    }

    /// The first profile that takes a job with these labels.
    package func profile(for jobLabels: [String]) -> RunnerProfile? {
        profiles.first { $0.takes(jobLabels) }
    }

    package func matches(_ jobLabels: [String]) -> Bool {
        profile(for: jobLabels) != nil
    }

    /// Why no profile takes a job with these labels, one line per profile.
    package func mismatches(for jobLabels: [String]) -> [String] {
        profiles.map { profile in
            let missing = profile.matcher.mismatches(for: jobLabels)
            if !missing.isEmpty {
                return "profile \(profile.displayName): " + missing.map(\.description).joined(separator: "; ")
            }
            return "profile \(profile.displayName): its runners do not carry "
                + profile.uncovered(jobLabels).joined(separator: ", ")
        }
    }
}

/// The current profiles, replaced as a whole when `PROFILES_FILE` changes; every reader sees one consistent set.
package final class RunnerProfileStore: Sendable, JobMatching {
    private let state: Mutex<(profiles: RunnerProfiles, resources: [KubernetesResource], hooks: Bool)>

    package init(_ profiles: RunnerProfiles) {
        state = Mutex((profiles, Self.resources(of: profiles, adding: []), Self.usesContainerHooks(profiles)))
    }

    package var current: RunnerProfiles { state.withLock { $0.profiles } }

    package func replace(with profiles: RunnerProfiles) {
        state.withLock {
            $0 = (
                profiles, Self.resources(of: profiles, adding: $0.resources),
                $0.hooks || Self.usesContainerHooks(profiles)
            )
        }
    }

    package func matches(_ jobLabels: [String]) -> Bool { current.matches(jobLabels) }

    package var warmPools: [WarmPool] { current.profiles.compactMap(\.warmPool) }

    package var customResources: [KubernetesResource] { state.withLock { $0.resources } }

    package var usesContainerHooks: Bool { state.withLock { $0.hooks } }

    private static func usesContainerHooks(_ profiles: RunnerProfiles) -> Bool {
        profiles.profiles.contains { $0.settings.backend == nil && $0.settings.mode.usesContainerHooks }
    }

    private static func resources(
        of profiles: RunnerProfiles,
        adding known: [KubernetesResource]
    ) -> [KubernetesResource] {
        var all = known
        for resource in profiles.profiles.compactMap(\.settings.backend?.resource) where !all.contains(resource) {
            all.append(resource)
        }
        return all
    }
}

extension JobMatching where Self == LabelMatcher {
    /// The default matcher (`LABEL_MATCHERS` unset): jobs that carry `self-hosted`.
    package static var selfHosted: LabelMatcher { LabelMatcher.selfHosted }
}
