import Runners

extension RunnerJob.Settings {
    /// The runner Job settings a configuration gives.
    init(_ configuration: Configuration) {
        self.init(
            namespace: configuration.namespace,
            mode: configuration.runnerMode,
            runnerImage: configuration.runnerImage,
            dindImage: configuration.dindImage,
            dindMTU: configuration.dindMTU,
            ttlSecondsAfterFinished: configuration.jobTTLSeconds,
            ownerLabel: configuration.ownerLabel,
            caBundle: configuration.runnerCABundle,
            proxy: configuration.runnerProxy,
            containerHooks: configuration.containerHooks
        )
    }
}
