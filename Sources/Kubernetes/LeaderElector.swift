import Logging
import Observability
import ServiceLifecycle
import Support
import Synchronization

/// Leader election over a `coordination.k8s.io/v1` Lease, so background work (the reconciler) runs on one
/// replica at a time while every replica serves webhooks.
///
/// Like client-go: a holder renews every `renewInterval`; another replica takes the Lease over only when it has
/// not seen the Lease change for `leaseDuration` on its own monotonic clock (`clock`, which also paces the attempts),
/// counted from when its GET answered (so clock skew between nodes does not matter). Fencing: `isLeader` turns false
/// `leaseDuration - fencingMargin` after the start of the last successful renewal, before any other replica may take
/// over; a failed renewal (the API server unreachable) does not end leadership before that, while a conflict or
/// another holder ends it at once.
/// Users check `isLeader` just before each change they make. On shutdown the Lease is released, if this replica
/// still holds it, even when the shutting-down task is cancelled, so a successor starts at once.
package final class LeaderElector: Service {
    package struct Configuration: Sendable {
        package var name = "kube-actions-runner"
        package var leaseDuration: Duration = .seconds(30)
        package var renewInterval: Duration = .seconds(10)
        package var fencingMargin: Duration = .seconds(5)

        package init() {}
    }

    private struct State {
        var leadingUntil: MonotonicClock.Instant?
        /// The holder and renew time last seen, and when (our clock) they were first seen.
        var observed: (holder: String?, renew: String?)?
        var observedAt: MonotonicClock.Instant?
    }

    package let identity: String
    private let kubernetes: any KubernetesAPI
    private let namespace: String
    private let configuration: Configuration
    private let metrics: Metrics
    private let logger: Logger
    private let clock: MonotonicClock
    private let state = Mutex(State())

    package init(
        kubernetes: any KubernetesAPI,
        namespace: String,
        identity: String,
        configuration: Configuration = Configuration(),
        clock: some Clock<Duration> = ContinuousClock(),
        metrics: Metrics,
        logger: Logger
    ) {
        self.clock = MonotonicClock(clock)
        self.kubernetes = kubernetes
        self.namespace = namespace
        self.identity = identity
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
    }

    /// True while this replica holds a Lease it renewed recently enough.
    package var isLeader: Bool {
        let now = clock.now
        return state.withLock { state in state.leadingUntil.map { now < $0 } ?? false }
    }

    package func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await tryAcquireOrRenew()
            metrics.leader.set(Int64(isLeader ? 1 : 0))
            let pause = isLeader ? configuration.renewInterval : configuration.renewInterval / 2
            try? await cancelWhenGracefulShutdown { try await self.clock.sleep(for: pause) }
        }
        await release()
    }

    /// One attempt; public for tests.
    package func tryAcquireOrRenew() async {
        let now = Timestamps.now()
        let attemptStarted = clock.now
        let duration = Int(configuration.leaseDuration.components.seconds)
        do throws(KubernetesAPIError) {
            guard var lease = try await kubernetes.lease(name: configuration.name, namespace: namespace) else {
                _ = try await kubernetes.createLease(
                    Lease(
                        name: configuration.name,
                        holderIdentity: identity,
                        leaseDurationSeconds: duration,
                        acquireTime: Timestamps.microTime(now),
                        renewTime: Timestamps.microTime(now),
                        leaseTransitions: 0
                    ),
                    namespace: namespace
                )
                becameLeader(at: attemptStarted, transition: true)
                return
            }
            let seen = (lease.holderIdentity, lease.renewTime)
            // A change is dated when the GET answered, not when it was sent: the later time, so a slow answer can
            // only delay a takeover.
            let answered = clock.now
            let expired = state.withLock { state -> Bool in
                if state.observed == nil || state.observed! != seen {
                    state.observed = seen
                    state.observedAt = answered
                }
                let leaseDuration = Duration.seconds(lease.leaseDurationSeconds ?? duration)
                return answered - state.observedAt! >= leaseDuration
            }
            let holder = lease.holderIdentity ?? ""
            if holder == identity {
                lease.renewTime = Timestamps.microTime(now)
                lease.leaseDurationSeconds = duration
                _ = try await kubernetes.updateLease(lease, namespace: namespace)
                becameLeader(at: attemptStarted, transition: false)
            } else if holder.isEmpty || expired {
                lease.holderIdentity = identity
                lease.leaseDurationSeconds = duration
                lease.acquireTime = Timestamps.microTime(now)
                lease.renewTime = Timestamps.microTime(now)
                lease.leaseTransitions = (lease.leaseTransitions ?? 0) + 1
                _ = try await kubernetes.updateLease(lease, namespace: namespace)
                logger.notice(
                    "took over the leader Lease",
                    metadata: ["previous": "\(holder)", "identity": "\(identity)"]
                )
                becameLeader(at: attemptStarted, transition: true)
            } else {
                lostLeadership(reason: "held by \(holder)")
            }
        } catch  where error.kind == .conflict || error.kind == .alreadyExists {
            // Someone else wrote first: they lead.
            lostLeadership(reason: error.description)
        } catch {
            // Unreachable, or 5xx/429: nobody can take over before the Lease expires, and `isLeader` turns false
            // (fencing margin included) by then unless a renewal succeeds first.
            if isLeader {
                logger.warning(
                    "renewing the leader Lease failed; still leading until it would expire",
                    metadata: ["error": "\(error)", "identity": "\(identity)"]
                )
            }
        }
    }

    private func becameLeader(at attemptStarted: MonotonicClock.Instant, transition: Bool) {
        let wasLeader = isLeader
        state.withLock { $0.leadingUntil = attemptStarted + configuration.leaseDuration - configuration.fencingMargin }
        if !wasLeader {
            logger.notice("leading: reconciler runs on this replica", metadata: ["identity": "\(identity)"])
        }
    }

    private func lostLeadership(reason: String) {
        let now = clock.now
        let wasLeader = state.withLock { state -> Bool in
            defer { state.leadingUntil = nil }
            return state.leadingUntil.map { now < $0 } ?? false
        }
        if wasLeader {
            logger.warning("no longer leading", metadata: ["reason": "\(reason)", "identity": "\(identity)"])
        }
    }

    /// Gives the Lease up so another replica can lead without waiting for it to expire: whenever the Lease still
    /// names this replica (even if fencing already stopped it acting), and even from a cancelled task.
    package func release() async {
        let held = state.withLock { state -> Bool in
            defer { state.leadingUntil = nil }
            return state.leadingUntil != nil || state.observed?.holder == identity
        }
        metrics.leader.set(Int64(0))
        guard held else { return }
        let work = Task.detached { await self.giveUp() }
        await work.value
    }

    private func giveUp() async {
        do throws(KubernetesAPIError) {
            guard var lease = try await kubernetes.lease(name: configuration.name, namespace: namespace),
                lease.holderIdentity == identity
            else { return }
            lease.holderIdentity = ""
            lease.leaseDurationSeconds = 1
            lease.renewTime = Timestamps.microTime(Timestamps.now())
            _ = try await kubernetes.updateLease(lease, namespace: namespace)
            logger.notice("released the leader Lease", metadata: ["identity": "\(identity)"])
        } catch {
            logger.warning("releasing the leader Lease failed", metadata: ["error": "\(error)"])
        }
    }
}
