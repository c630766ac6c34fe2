import Logging
import Support

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What the service checks and adjusts about its surroundings at start: descriptors, memory, secrets.
package enum StartupChecks {
    /// Descriptors kept for everything but client connections: the two API clients' connection caches (up to 256
    /// each), files, the event loops' epoll and eventfd descriptors, standard streams.
    package static let reservedDescriptors = 576

    /// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit in force afterwards.
    package static func raiseDescriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur > rlim_t(Int.max) ? Int.max : Int(limit.rlim_cur)
    }

    /// `MAX_CONNECTIONS` kept under the descriptor limit, with room for everything else (at least 16).
    package static func clampedConnections(_ configured: Int, descriptorLimit: Int) -> Int {
        let reserve = min(reservedDescriptors, descriptorLimit / 2)
        return max(16, min(configured, descriptorLimit - reserve))
    }

    /// Connections each of the two upstream clients may hold: 256, or what the reserve leaves under a small
    /// descriptor limit (half of it each, less 16 for listeners, files, epoll and eventfd descriptors, at least 4), so the
    /// clients never take the descriptors the clamp kept for client connections.
    package static func upstreamConnections(descriptorLimit: Int) -> Int {
        let reserve = min(reservedDescriptors, descriptorLimit / 2)
        return max(4, min(256, reserve / 2 - 16))
    }

    /// Memory the configuration allows the process to use at most, in bytes (README, "Memory"): a base for the
    /// binary, its threads and a burst of deliveries, each open connection, the in-flight request budget with
    /// its eighth for heads, and one upstream answer at its cap.
    package static func memoryBound(_ configuration: Configuration) -> Int {
        let base = 40 * 1024 * 1024
        let perConnection = 4 * 1024
        return base + configuration.maxConnections * perConnection + configuration.maxInflightBodyBytes * 9 / 8
            + Configuration.Defaults.maxUpstreamAnswerBytes
    }

    /// The cgroup's memory limit (v2 `memory.max`, else v1 `memory.limit_in_bytes`); nil when unlimited or unknown.
    package static func cgroupMemoryLimit(files: some FileReading) -> Int? {
        for path in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            guard let text = try? files.read(path) else { continue }
            let value = text.trimmingOWS().droppingTrailingNewlines()
            if value == "max" { return nil }
            // cgroup v1 reports "no limit" as a huge number near Int64.max.
            if let bytes = Int(value) { return bytes >= 1 << 60 ? nil : bytes }
        }
        return nil
    }

    /// Applies the descriptor limit to `configuration` and logs what the operator should know: a clamp, a
    /// configuration that can outgrow the memory limit, a short webhook secret. Never logs a secret.
    package static func apply(
        to configuration: inout Configuration,
        descriptorLimit: Int,
        files: some FileReading,
        logger: Logger
    ) {
        let clamped = clampedConnections(configuration.maxConnections, descriptorLimit: descriptorLimit)
        if clamped != configuration.maxConnections {
            logger.warning(
                "MAX_CONNECTIONS clamped under the descriptor limit",
                metadata: [
                    "configured": "\(configuration.maxConnections)", "max_connections": "\(clamped)",
                    "rlimit_nofile": "\(descriptorLimit)", "reserved": "\(reservedDescriptors)",
                ]
            )
            configuration.maxConnections = clamped
        }
        configuration.upstreamConnections = upstreamConnections(descriptorLimit: descriptorLimit)
        if let limit = cgroupMemoryLimit(files: files) {
            let bound = memoryBound(configuration)
            if bound > limit {
                logger.warning(
                    "the configuration can use more memory than the container's limit; lower MAX_CONNECTIONS or MAX_INFLIGHT_BODY_BYTES, or raise the limit",
                    metadata: [
                        "bound_mib": "\(bound / (1024 * 1024))", "limit_mib": "\(limit / (1024 * 1024))",
                        "max_connections": "\(configuration.maxConnections)",
                        "max_inflight_body_bytes": "\(configuration.maxInflightBodyBytes)",
                    ]
                )
            }
        }
        var secrets = [("WEBHOOK_SECRET", configuration.webhookSecret)]
        if let previous = configuration.previousWebhookSecret { secrets.append(("WEBHOOK_SECRET_PREVIOUS", previous)) }
        for (key, secret) in secrets where secret.value.count < minimumSecretLength {
            logger.warning(
                "webhook secret is short: anyone who guesses it can make the service create runners; use at least 16 random characters (openssl rand -hex 32)",
                metadata: ["key": "\(key)", "length": "\(secret.value.count)"]
            )
        }
    }

    /// Webhook secrets shorter than this draw a warning at start.
    package static let minimumSecretLength = 16
}
