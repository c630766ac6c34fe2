import GitHub
import Logging
import Observability
import Support
import Synchronization

/// Recovery the way GitHub documents it: GitHub never redelivers a failed delivery by itself, so each reconciler
/// cycle lists the recent deliveries of every hook a verified delivery came through (`HookRegistry`) and asks
/// GitHub to deliver each failed `workflow_job` delivery again, once per GUID, unless a later delivery of the same
/// GUID succeeded. The redelivery comes back through the webhook path like any delivery.
///
/// Each hook is read from its last look (less `overlap`), never further back than `firstLook` the first time nor
/// than GitHub's redelivery window. Pages cost a point each and a redelivery five (eleven for a `queued` delivery,
/// whose provisioning on the webhook path it brings about), from the reconciler's budget;
/// what the budget does not allow waits for the next cycle. A 403 or 404 on a hook's list (or on a redelivery)
/// means the credential may not use its deliveries: said once, that hook is not read again, and `findings` says so
/// for /ready's detail. The hooks come from deliveries' headers, which the signature does not cover: a hook that is
/// not there answers 404 and is left alone like one without the permission.
/// Polling the jobs lists stays the fallback.
///
/// A failed `workflow_job` delivery in a list is also a sign of loss for its repository (the hook's, or the one a
/// verified delivery named with the listed `repository_id`): counted once per GUID in
/// `webhook_failed_deliveries_seen_total{owner}` and handed to `onSignOfLoss`, so the reconciler visits that
/// repository next even when the redelivery cannot be asked for or does not arrive.
package final class DeliveryRecovery: Sendable {
    package struct Configuration: Sendable {
        /// GitHub redelivers deliveries of the last 3 days (github.com; 7 on GHES): nothing older is asked for.
        package var redeliveryWindow: Duration = .seconds(3 * 24 * 3600)
        /// How far back a hook is read the first time this process reads it.
        package var firstLook: Duration = .seconds(3600)
        /// Read again before the last look: a delivery is listed at its start, which may come after that look.
        package var overlap: Duration = .seconds(120)
        /// Pages of 100 read per hook and cycle at most.
        package var maxPages = 5
        /// GUIDs redelivered and remembered, so none is redelivered twice (the oldest forgotten first).
        package var rememberedGUIDs = 10_000

        package init() {}
    }

    private struct State {
        /// Epoch seconds of each hook's last complete look.
        var lastLook: [WebhookHook: Double] = [:]
        /// GUIDs redelivered, in the order they were; `redeliveredOrder` bounds the set.
        var redelivered: Set<String> = []
        var redeliveredOrder: [String] = []
        /// GUIDs counted as a sign of loss, bounded the same way.
        var signaled: Set<String> = []
        var signaledOrder: [String] = []
        /// Hooks whose deliveries the credential may not read, and why.
        var disabled: [WebhookHook: String] = [:]
    }

    private let configuration: Configuration
    private let github: any GitHubAPI
    private let hooks: HookRegistry
    private let clock: MonotonicClock
    private let metrics: Metrics
    private let logger: Logger
    private let onSignOfLoss: (@Sendable (_ owner: String, _ repo: String) -> Void)?
    private let state = Mutex(State())

    /// - Parameter onSignOfLoss: for the reconciler (`RepositoryRegistry.prioritize(owner:repo:loss:)`), told the
    ///   repository of each failed delivery listed.
    package init(
        configuration: Configuration = Configuration(),
        github: any GitHubAPI,
        hooks: HookRegistry,
        clock: MonotonicClock = MonotonicClock(ContinuousClock()),
        metrics: Metrics,
        logger: Logger,
        onSignOfLoss: (@Sendable (_ owner: String, _ repo: String) -> Void)? = nil
    ) {
        self.onSignOfLoss = onSignOfLoss
        self.configuration = configuration
        self.github = github
        self.hooks = hooks
        self.clock = clock
        self.metrics = metrics
        self.logger = logger
    }

    /// One line per hook whose deliveries cannot be read (for /ready's detail); empty while every hook is readable.
    package var findings: [String] {
        state.withLock { state in
            state.disabled.map { hook, reason in
                "redelivery of failed deliveries is off for \(hook): \(reason)"
            }.sorted()
        }
    }

    /// Reads every known hook and redelivers what failed; returns the deliveries asked for again. Stops when
    /// `budget` has no points left, or GitHub rate-limits the credential.
    @discardableResult
    package func pass(budget: PointsBudget?) async -> Int {
        var redelivered = 0
        let known = hooks.all
        // Only the hooks the registry still knows are remembered.
        state.withLock { state in
            let current = Set(known)
            state.lastLook = state.lastLook.filter { current.contains($0.key) }
            state.disabled = state.disabled.filter { current.contains($0.key) }
        }
        for hook in known {
            if Task.isCancelled { break }
            guard state.withLock({ $0.disabled[hook] == nil }) else { continue }
            switch await recover(hook, budget: budget) {
            case .done(let count): redelivered += count
            case .stop(let count): return redelivered + count
            }
        }
        return redelivered
    }

    private enum Outcome {
        case done(Int)
        /// Out of points, or rate limited: the rest waits for the next cycle.
        case stop(Int)
    }

    private func recover(_ hook: WebhookHook, budget: PointsBudget?) async -> Outcome {
        let now = clock.epochSeconds
        let windowStart = now - seconds(configuration.redeliveryWindow)
        let since = max(
            state.withLock { $0.lastLook[hook] }.map { $0 - seconds(configuration.overlap) }
                ?? now - seconds(configuration.firstLook),
            windowStart
        )
        var listed: [HookDelivery] = []
        var cursor: String?
        var pages = 0
        var complete = false
        while pages < configuration.maxPages {
            guard budget?.spend(PointsBudget.read) ?? true else { return .stop(0) }
            pages += 1
            let page: HookDeliveryPage
            do {
                page = try await github.hookDeliveries(hook, perPage: 100, cursor: cursor)
            } catch {
                return failedListing(hook, error)
            }
            let recent = page.deliveries.filter { (Timestamps.parse($0.deliveredAt) ?? now) >= since }
            listed += recent
            cursor = page.nextCursor
            if recent.count < page.deliveries.count || cursor == nil {
                complete = true
                break
            }
        }
        let failed = Self.failed(in: listed)
        for delivery in failed { noteLoss(delivery, of: hook) }
        let done = state.withLock { $0.redelivered }
        var count = 0
        for delivery in failed where !done.contains(delivery.guid) {
            if Task.isCancelled { break }
            guard budget?.spend(Self.cost(of: delivery)) ?? true else { return .stop(count) }
            do {
                try await github.redeliver(hook, deliveryID: delivery.id)
                remember(delivery.guid)
                metrics.countRedelivery("redelivered")
                count += 1
                logger.info(
                    "failed delivery redelivered",
                    metadata: [
                        "delivery": "\(delivery.guid)", "hook": "\(hook)", "status_code": "\(delivery.statusCode)",
                    ]
                )
            } catch  where error.kind == .forbidden || error.kind == .notFound {
                metrics.countRedelivery("failed")
                disable(hook, because: error, "redelivering one")
                return .done(count)
            } catch {
                metrics.countRedelivery("failed")
                logger.warning(
                    "cannot redeliver a failed delivery",
                    metadata: ["delivery": "\(delivery.guid)", "hook": "\(hook)", "error": "\(error)"]
                )
                if error.kind == .rateLimited { return .stop(count) }
                // Asked once: a refusal other than a passing one is not asked again.
                if !error.isTransient { remember(delivery.guid) }
            }
        }
        // The next look starts here only once everything listed was handled; one cut short (by `maxPages`, the
        // budget or cancellation) starts over from the same point.
        if complete && !Task.isCancelled { state.withLock { $0.lastLook[hook] = now } }
        return .done(count)
    }

    /// Points a redelivery costs: its POST, and for a `queued` delivery the provisioning it brings about on the
    /// webhook path (a GET of the job and the POST of its runner's registration), so that what the reconciler
    /// sets off stays within its points too.
    static func cost(of delivery: HookDelivery) -> Int {
        PointsBudget.write + (delivery.action == "queued" ? PointsBudget.read + PointsBudget.write : 0)
    }

    /// The newest failed `workflow_job` delivery of each GUID with no successful one among `listed` (newest
    /// first), oldest first.
    static func failed(in listed: [HookDelivery]) -> [HookDelivery] {
        let succeeded = Set(listed.filter(\.succeeded).map(\.guid))
        var seen: Set<String> = []
        var failed: [HookDelivery] = []
        for delivery in listed where delivery.event == "workflow_job" && !delivery.succeeded {
            guard !succeeded.contains(delivery.guid), seen.insert(delivery.guid).inserted else { continue }
            failed.append(delivery)
        }
        return failed.reversed()
    }

    private func failedListing(_ hook: WebhookHook, _ error: GitHubAPIError) -> Outcome {
        switch error.kind {
        case .forbidden, .notFound:
            disable(hook, because: error, "listing its deliveries")
            return .done(0)
        case .rateLimited:
            return .stop(0)
        default:
            logger.warning(
                "cannot list a hook's deliveries; trying again next cycle",
                metadata: ["hook": "\(hook)", "error": "\(error)"]
            )
            return .done(0)
        }
    }

    /// The credential may not read (or redeliver) the hook's deliveries: said once, and the hook is not read again.
    private func disable(_ hook: WebhookHook, because error: GitHubAPIError, _ doing: String) {
        let reason =
            "GitHub answered \(error.status.map(String.init) ?? "no response") to \(doing)"
            + (error.acceptedPermissions.map { " (the credential needs \($0))" } ?? "")
            + "; give the credential the Webhooks permission on it (read to list, write to redeliver)"
        state.withLock { $0.disabled[hook] = reason }
        logger.warning(
            "redelivery of failed deliveries is off for a hook: GitHub does not let the credential use its deliveries",
            metadata: ["hook": "\(hook)", "error": "\(error)"]
        )
    }

    /// A failed delivery listed: a sign of loss for its repository, once per GUID. A redelivery that failed again
    /// is a sign again only if its GUID was forgotten meanwhile.
    private func noteLoss(_ delivery: HookDelivery, of hook: WebhookHook) {
        let isNew = state.withLock { state in
            guard state.signaled.insert(delivery.guid).inserted else { return false }
            state.signaledOrder.append(delivery.guid)
            if state.signaledOrder.count > configuration.rememberedGUIDs {
                state.signaled.remove(state.signaledOrder.removeFirst())
            }
            return true
        }
        guard isNew else { return }
        let repository: RepositoryRegistry.Repository?
        if case .repository(let owner, let repo, _) = hook {
            repository = RepositoryRegistry.Repository(owner: owner, name: repo)
        } else {
            repository = delivery.repositoryID.flatMap { hooks.repository(id: $0) }
        }
        var owner = repository?.owner ?? ""
        if case .organization(let organization, _) = hook { owner = organization }
        metrics.countFailedDeliverySeen(owner: owner)
        logger.notice(
            "a hook lists a failed delivery: a sign of loss; its repository is reconciled next",
            metadata: [
                "delivery": "\(delivery.guid)", "hook": "\(hook)", "status_code": "\(delivery.statusCode)",
                "repo": "\(repository.map(\.description) ?? "not known")",
            ]
        )
        if let repository { onSignOfLoss?(repository.owner, repository.name) }
    }

    /// Whether this process asked GitHub to redeliver the delivery with this GUID (the last `rememberedGUIDs`).
    package func redelivered(_ guid: String) -> Bool {
        state.withLock { $0.redelivered.contains(guid) }
    }

    private func remember(_ guid: String) {
        state.withLock { state in
            guard state.redelivered.insert(guid).inserted else { return }
            state.redeliveredOrder.append(guid)
            if state.redeliveredOrder.count > configuration.rememberedGUIDs {
                state.redelivered.remove(state.redeliveredOrder.removeFirst())
            }
        }
    }

    private func seconds(_ duration: Duration) -> Double { Double(duration.components.seconds) }
}
