import Testing

@testable import GitHub
@testable import Observability
@testable import Runners
@testable import Support
@testable import TestSupport

/// The redelivery of failed deliveries, on a manual clock against the GitHub double.
@Suite struct DeliveryRecoveryTests {
    let github = FakeGitHubAPI()
    let metrics = Metrics()
    let logs = LogCapture()
    let time = ManualClock()
    let hooks = HookRegistry()
    static let hook = WebhookHook.repository(owner: "octo", repo: "repo", id: 292_430_182)

    init() {
        github.state.withLock { $0.clock = time }
        hooks.remember(targetType: "repository", hookID: "292430182", owner: "octo", repo: "repo")
    }

    func recovery(_ configuration: DeliveryRecovery.Configuration = .init()) -> DeliveryRecovery {
        DeliveryRecovery(
            configuration: configuration,
            github: github,
            hooks: hooks,
            clock: MonotonicClock(time, wallTimeAtStart: 1_700_000_000),
            metrics: metrics,
            logger: logs.logger()
        )
    }

    var exposition: String { String(decoding: metrics.exposition(), as: UTF8.self) }

    @Test func redeliversAFailedDeliveryOnceAndNotOneThatLaterSucceeded() async throws {
        let failed = github.deliver("lost", through: Self.hook, statusCode: 503, secondsAgo: 60)
        github.deliver("late", through: Self.hook, statusCode: 0, secondsAgo: 50)
        github.deliver("late", through: Self.hook, statusCode: 200, secondsAgo: 40)
        github.deliver("fine", through: Self.hook, statusCode: 202, secondsAgo: 30)
        github.deliver("other", through: Self.hook, statusCode: 500, event: "push", secondsAgo: 20)
        let recovery = recovery()

        #expect(await recovery.pass(budget: nil) == 1)
        #expect(github.redeliveries == ["redeliver \(Self.hook) \(failed.id)"])
        #expect(exposition.contains(#"webhook_redeliveries_total{result="redelivered"} 1"#))
        #expect(logs.text.contains("failed delivery redelivered"))

        // The next cycle sees the failure again (and the redelivery's success): nothing is asked twice.
        time.advance(by: .seconds(60))
        github.deliver("lost", through: Self.hook, statusCode: 504, secondsAgo: 1)
        #expect(await recovery.pass(budget: nil) == 0)
        #expect(github.redeliveries.count == 1)
    }

    /// A GUID redelivered once is never asked again, even when the redelivery failed too.
    @Test func aSecondCycleDoesNotRedeliverAgain() async throws {
        let github = self.github
        github.deliver("lost", through: Self.hook, statusCode: 503, secondsAgo: 10)
        let recovery = recovery()
        #expect(await recovery.pass(budget: nil) == 1)
        // GitHub's redelivery failed as well.
        github.state.withLock { state in
            if var last = state.hookDeliveries[Self.hook]?.popLast() {
                last.status = "timed out"
                last.statusCode = 0
                state.hookDeliveries[Self.hook]?.append(last)
            }
        }
        time.advance(by: .seconds(60))
        #expect(await recovery.pass(budget: nil) == 0)
        #expect(github.redeliveries.count == 1)
    }

    /// Deliveries older than the look-back (or GitHub's redelivery window) are left alone.
    @Test func looksNoFurtherBackThanTheFirstLook() async throws {
        github.deliver("old", through: Self.hook, statusCode: 503, secondsAgo: 7200)
        #expect(await recovery().pass(budget: nil) == 0)
        #expect(github.redeliveries.isEmpty)
    }

    /// Pages cost a point each and a redelivery of a `queued` delivery eleven (its POST, and the GET and POST of
    /// the provisioning it brings about): without the points, the rest waits for the next cycle.
    @Test func staysWithinThePointsBudget() async throws {
        for index in 0..<3 { github.deliver("lost-\(index)", through: Self.hook, statusCode: 503, secondsAgo: 10) }
        let budget = PointsBudget(perMinute: 23, clock: time)
        let recovery = recovery()
        #expect(await recovery.pass(budget: budget) == 2)
        #expect(budget.spentThisMinute == 23)
        // Longer than the overlap: the look cut short by the budget starts over from where it began.
        time.advance(by: .seconds(600))
        #expect(await recovery.pass(budget: budget) == 1)
        #expect(github.redeliveries.count == 3)
    }

    @Test func aMissingPermissionTurnsItOffForThatHookWithOneLogLine() async throws {
        github.deliver("lost", through: Self.hook, statusCode: 503, secondsAgo: 10)
        github.state.withLock {
            $0.hookFaults[Self.hook] = FakeGitHubAPI.error(.notFound, status: 404, endpoint: "GET x")
        }
        let recovery = recovery()
        #expect(recovery.findings.isEmpty)
        #expect(await recovery.pass(budget: nil) == 0)
        time.advance(by: .seconds(60))
        #expect(await recovery.pass(budget: nil) == 0)

        let lists = github.state.withLock { $0.calls.filter { $0.hasPrefix("deliveries ") } }
        #expect(lists.count == 1)
        #expect(github.redeliveries.isEmpty)
        #expect(logs.all.filter { $0.contains("redelivery of failed deliveries is off") }.count == 1)
        #expect(recovery.findings.count == 1)
        #expect(recovery.findings.first?.contains("repository octo/repo hook 292430182") == true)
    }

    /// A credential that may list but not redeliver: the first refusal turns the hook off, without a line per GUID.
    @Test func aRefusedRedeliveryTurnsItOffToo() async throws {
        github.deliver("a", through: Self.hook, statusCode: 503, secondsAgo: 20)
        github.deliver("b", through: Self.hook, statusCode: 503, secondsAgo: 10)
        github.state.withLock {
            $0.redeliveryFaults[Self.hook] = FakeGitHubAPI.error(.forbidden, status: 403, endpoint: "POST x")
        }
        let recovery = recovery()
        #expect(await recovery.pass(budget: nil) == 0)
        time.advance(by: .seconds(60))
        #expect(await recovery.pass(budget: nil) == 0)
        #expect(github.redeliveries.count == 1)
        #expect(exposition.contains(#"webhook_redeliveries_total{result="failed"} 1"#))
        #expect(logs.all.filter { $0.contains("redelivery of failed deliveries is off") }.count == 1)
        #expect(recovery.findings.first?.contains("403 to redelivering one") == true)
    }

    /// The reconciler runs it first in each cycle, within its budget.
    @Test func theReconcilerRunsItEachCycle() async throws {
        let failed = github.deliver("lost", through: Self.hook, statusCode: 503, secondsAgo: 10)
        let reconciler = Reconciler.make(
            github: github,
            kubernetes: FakeKubernetesAPI(),
            metrics: metrics,
            logs: logs,
            clock: time,
            deliveryRecovery: recovery()
        )
        await reconciler.cycle()
        #expect(github.redeliveries == ["redeliver \(Self.hook) \(failed.id)"])
    }

    /// A failed delivery listed is a sign of loss for its repository, once per GUID: an organization's or an App's
    /// hook names it by id, mapped back through the ids verified deliveries carried; an id no delivery named flags
    /// nothing (counted under the organization, or under "" for the App's hook).
    @Test func aFailedDeliveryIsASignOfLossForItsRepository() async throws {
        let organization = WebhookHook.organization("octo", id: 7)
        hooks.remember(.app)
        github.deliver("app-lost", through: .app, statusCode: 502, secondsAgo: 3, repositoryID: 43)
        hooks.remember(targetType: "organization", hookID: "7", owner: "octo", repo: "api", repositoryID: 1_296_269)
        github.deliver("lost", through: organization, statusCode: 503, secondsAgo: 10, repositoryID: 1_296_269)
        github.deliver("unknown", through: organization, statusCode: 0, secondsAgo: 5, repositoryID: 42)
        github.deliver("fine", through: organization, statusCode: 200, secondsAgo: 4, repositoryID: 1_296_269)
        let signs = Notes()
        let recovery = DeliveryRecovery(
            github: github,
            hooks: hooks,
            clock: MonotonicClock(time, wallTimeAtStart: 1_700_000_000),
            metrics: metrics,
            logger: logs.logger(),
            onSignOfLoss: { owner, repo in signs.append("\(owner)/\(repo)") }
        )
        #expect(await recovery.pass(budget: nil) == 3)
        #expect(signs.all == ["octo/api"])
        #expect(exposition.contains(#"webhook_failed_deliveries_seen_total{owner="octo"} 2"#))
        #expect(exposition.contains(#"webhook_failed_deliveries_seen_total{owner=""} 1"#))
        #expect(logs.text.contains("a hook lists a failed delivery: a sign of loss"))

        time.advance(by: .seconds(60))  // listed again (the overlap): not a second sign
        _ = await recovery.pass(budget: nil)
        #expect(signs.all == ["octo/api"])
        #expect(exposition.contains(#"webhook_failed_deliveries_seen_total{owner="octo"} 2"#))
    }

    @Test func theRegistryMapsRepositoryIdsUpToItsLimit() {
        let hooks = HookRegistry(repositoryLimit: 2)
        hooks.remember(targetType: "business", hookID: "4", owner: "octo", repo: "a", repositoryID: 1)
        hooks.remember(repositoryID: 2, owner: "octo", repo: "b")
        hooks.remember(repositoryID: 1, owner: "octo", repo: "renamed")
        hooks.remember(repositoryID: 3, owner: "octo", repo: "c")
        #expect(hooks.repository(id: 1) == nil)  // the oldest id goes first
        #expect(hooks.repository(id: 2)?.description == "octo/b" && hooks.repository(id: 3)?.description == "octo/c")
        #expect(hooks.all.isEmpty)  // a business's hook is not listed
    }

    @Test func theRegistryKeepsTheMostRecentHooksUpToItsLimit() {
        let hooks = HookRegistry(limit: 2)
        hooks.remember(targetType: "repository", hookID: "1", owner: "octo", repo: "a")
        hooks.remember(targetType: "organization", hookID: "2", owner: "octo", repo: "b")
        hooks.remember(targetType: "integration", hookID: "3", owner: "octo", repo: "c")
        hooks.remember(targetType: "business", hookID: "4", owner: "octo", repo: "d")
        #expect(hooks.all == [.app, .organization("octo", id: 2)])
    }
}
