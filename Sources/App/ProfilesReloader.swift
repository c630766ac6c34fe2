import Logging
import Observability
import Runners
import ServiceLifecycle
import Support
import Synchronization

/// Re-reads `PROFILES_FILE` every `interval` and puts a changed, valid file in force.
///
/// The file is read by its path each time, never through a kept descriptor: a ConfigMap volume is updated by
/// swapping a symlink, so the path names the new file while a descriptor would keep the old one. A file that does
/// not parse keeps the profiles in force; the problems are logged once per distinct content, counted in
/// `runner_profiles_reloads_total{result="invalid"}`, and `runner_profiles_file_valid` is 0 until a valid file
/// comes (`/ready` stays ready: the service keeps serving with the last good profiles).
package final class ProfilesReloader: Service, Sendable {
    package let path: String
    private let files: any FileReading
    private let store: RunnerProfileStore
    private let build: @Sendable ([ProfilesFile.Profile]) -> RunnerProfiles
    private let interval: Duration
    private let clock: MonotonicClock
    private let metrics: Metrics
    private let logger: Logger
    /// The text last read, valid or not: an unchanged file is not parsed again.
    private let lastText: Mutex<String?>
    /// Why the file in place is refused; nil while it is in force.
    private let refusal = Mutex<String?>(nil)

    /// - Parameters:
    ///   - initialText: the text the profiles in `store` came from (read at start), so it is not reported as new.
    ///   - build: the profiles a file's definitions make with the environment's settings.
    package init(
        path: String,
        files: any FileReading,
        store: RunnerProfileStore,
        initialText: String?,
        interval: Duration = .seconds(10),
        clock: some Clock<Duration> = ContinuousClock(),
        metrics: Metrics,
        logger: Logger,
        build: @escaping @Sendable ([ProfilesFile.Profile]) -> RunnerProfiles
    ) {
        self.path = path
        self.files = files
        self.store = store
        self.build = build
        self.interval = interval
        self.clock = MonotonicClock(clock)
        self.metrics = metrics
        self.logger = logger
        lastText = Mutex(initialText)
        metrics.setProfilesFileValid(true)
    }

    /// Why the file is refused now, or nil when the profiles in force are the file's.
    package var problem: String? { refusal.withLock { $0 } }

    package func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await self.clock.sleep(for: self.interval) }
            guard !Task.isCancelled && !Task.isShuttingDownGracefully else { break }
            check()
        }
    }

    /// Reads the file once; a changed file replaces the profiles if it is valid.
    package func check() {
        let text: String?
        do {
            text = try files.read(path)
        } catch {
            refuse(text: nil, "\(error)")
            return
        }
        guard let text else {
            refuse(text: nil, "the file does not exist")
            return
        }
        guard lastText.withLock({ $0 }) != text else { return }
        lastText.withLock { $0 = text }
        do throws(ProfilesFile.Problems) {
            let definitions = try ProfilesFile(parsing: text).profiles
            let profiles = build(definitions)
            store.replace(with: profiles)
            refusal.withLock { $0 = nil }
            metrics.setProfilesFileValid(true)
            metrics.countProfilesReload("ok")
            logger.notice(
                "runner profiles reloaded",
                metadata: [
                    "file": "\(path)", "profiles": "\(profiles.profiles.map(\.displayName).joined(separator: ","))",
                ]
            )
        } catch {
            refuse(text: text, error.description)
        }
    }

    private func refuse(text: String?, _ reason: String) {
        let isNew = refusal.withLock { refusal in
            defer { refusal = reason }
            return refusal != reason
        }
        if text == nil { lastText.withLock { $0 = nil } }
        metrics.setProfilesFileValid(false)
        guard isNew else { return }
        metrics.countProfilesReload("invalid")
        logger.error(
            "runner profiles file refused; the profiles in force stay",
            metadata: ["file": "\(path)", "problems": "\(reason)"]
        )
    }
}
