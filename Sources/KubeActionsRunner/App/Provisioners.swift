import Logging

/// Chooses the provisioner the configuration asks for.
public enum Provisioners {
    public struct Unavailable: Error, CustomStringConvertible {
        public var description: String
    }

    public static func make(
        configuration: Configuration,
        logger: Logger,
        metrics: Metrics? = nil
    ) throws(Unavailable)
        -> any RunnerProvisioner
    {
        if configuration.dryRun {
            return DryRunProvisioner(settings: RunnerJob.Settings(configuration), logger: logger, metrics: metrics)
        }
        throw Unavailable(
            description:
                "provisioning against GitHub and Kubernetes is not built yet; set DRY_RUN=true to run the service"
        )
    }
}
