import Testing

@testable import Webhook

@Suite struct DeliveryLogTests {
    @Test func remembersIdsUpToItsCapacityThenForgetsTheOldest() {
        let log = DeliveryLog(capacity: 3)
        for id in ["a", "b", "c"] { log.record(id) }
        #expect(log.contains("a") && log.contains("c"))
        log.record("d")
        #expect(!log.contains("a"))
        #expect(log.contains("b") && log.contains("d"))
        #expect(log.count == 3)
        log.record("d")  // recording again does not evict anything
        #expect(log.contains("b") && log.count == 3)
    }
}
