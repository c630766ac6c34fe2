import Synchronization

/// Counters the event loop keeps about load it shed, readable from any thread (for metrics and tests).
package final class HTTPServerStatistics: Sendable {
    /// Request bytes received and not yet answered, over all connections.
    let inflightBytes = Atomic<Int>(0)
    /// Connections not read at the moment because the in-flight bytes are at their limit.
    let budgetWaiting = Atomic<Int>(0)
    /// Requests cut with 503 because they held budget longest while another request needed it.
    let budgetCuts = Atomic<Int>(0)
    /// Connections answered 503 after waiting for budget with nothing to cut.
    let budgetRefusals = Atomic<Int>(0)
    /// Connections refused because the process had no descriptor left for them.
    let descriptorRefusals = Atomic<Int>(0)

    package init() {}

    package var inflightRequestBytes: Int { inflightBytes.load(ordering: .relaxed) }
    package var connectionsWaitingForBudget: Int { budgetWaiting.load(ordering: .relaxed) }
    package var requestsCutForBudget: Int { budgetCuts.load(ordering: .relaxed) }
    package var connectionsRefusedForBudget: Int { budgetRefusals.load(ordering: .relaxed) }
    package var connectionsRefusedForDescriptors: Int { descriptorRefusals.load(ordering: .relaxed) }
}
