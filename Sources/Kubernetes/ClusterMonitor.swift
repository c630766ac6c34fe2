import Logging
import Observability
import ServiceLifecycle
import Support
import Synchronization

/// Keeps an eye on the Kubernetes API: lists the runner Jobs every `interval`, publishes
/// `runner_jobs_active`, and remembers when the API last answered, which `/ready` reports. Its pauses and the age of
/// the last answer run on `clock`.
package final class ClusterMonitor: Service {
    private struct State {
        var lastAnswer: MonotonicClock.Instant?
        var lastError: String?
    }

    private let kubernetes: any KubernetesAPI
    private let namespace: String
    private let metrics: Metrics
    private let logger: Logger
    private let interval: Duration
    private let clock: MonotonicClock
    private let state = Mutex(State())

    /// Jobs this service created (any deployment of it).
    package static let labelSelector = "app.kubernetes.io/managed-by=kube-actions-runner"
    /// Jobs of this deployment (`RunnerJob.selector(ownerLabel:)`).
    private let selector: String

    package init(
        kubernetes: any KubernetesAPI,
        namespace: String,
        metrics: Metrics,
        logger: Logger,
        interval: Duration = .seconds(15),
        selector: String = ClusterMonitor.labelSelector,
        clock: some Clock<Duration> = ContinuousClock()
    ) {
        self.clock = MonotonicClock(clock)
        self.selector = selector
        self.kubernetes = kubernetes
        self.namespace = namespace
        self.metrics = metrics
        self.logger = logger
        self.interval = interval
    }

    package func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await check()
            try? await cancelWhenGracefulShutdown { try await self.clock.sleep(for: self.interval) }
        }
    }

    /// One look: count active runner Jobs.
    package func check() async {
        do {
            let jobs = try await kubernetes.listJobs(
                namespace: namespace,
                labelSelector: selector,
                limit: nil
            )
            metrics.runnerJobsActive.set(Int64(jobs.filter { !$0.isFinished }.count))
            let recovered = state.withLock { state -> Bool in
                defer { state.lastError = nil }
                return state.lastError != nil
            }
            recordAnswer()
            if recovered { logger.notice("Kubernetes API answers again", metadata: ["namespace": "\(namespace)"]) }
        } catch {
            let first = state.withLock { state -> Bool in
                defer { state.lastError = error.description }
                return state.lastError == nil
            }
            if first { logger.error("Kubernetes API check failed", metadata: ["error": "\(error)"]) }
        }
    }

    /// Any successful Kubernetes call counts as an answer.
    package func recordAnswer() {
        let now = clock.now
        state.withLock { $0.lastAnswer = now }
    }

    /// Ready when the API answered within three check intervals; checks at once when it never has.
    package func readiness() async -> Readiness {
        if state.withLock({ $0.lastAnswer == nil }) { await check() }
        let (lastAnswer, lastError) = state.withLock { ($0.lastAnswer, $0.lastError) }
        guard let lastAnswer else {
            return .notReady("Kubernetes API has not answered" + (lastError.map { ": \($0)" } ?? ""))
        }
        let age = clock.now - lastAnswer
        if age > interval * 3 {
            return .notReady(
                "Kubernetes API has not answered for \(age.components.seconds)s" + (lastError.map { ": \($0)" } ?? "")
            )
        }
        return .ready
    }
}
