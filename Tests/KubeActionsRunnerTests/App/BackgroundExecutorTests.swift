import CLinuxShims
import ServiceLifecycle
import Synchronization
import Testing

@testable import App
@testable import Support

@Suite struct BackgroundExecutorTests {
    /// Records the niceness of the thread each step runs on.
    final class Probe: Service, Sendable {
        let seen = Mutex<[String: Int32]>([:])

        func run() async throws {
            record("start")
            // Resumed from a thread of our own, as CurlTransport resumes a request's continuation.
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                LoopThread { continuation.resume() }.start()
            }
            record("after a resume from another thread")
            async let child: Void = record("child task")
            await child
            try await Task.sleep(for: .milliseconds(1))
            record("after sleeping")
        }

        func record(_ step: String) {
            let niceness = kar_thread_niceness()
            seen.withLock { $0[step] = niceness }
        }
    }

    @Test func runsAServiceAndWhatItAwaitsOnTheLowPriorityThread() async throws {
        let normal = kar_thread_niceness()
        let probe = Probe()
        try await BackgroundService(base: probe, executor: .shared).run()
        let seen = probe.seen.withLock { $0 }
        #expect(seen.count == 4)
        // niceness 10, or the process's own if it already runs lower (a thread may not raise its priority).
        for (step, niceness) in seen {
            #expect(niceness == max(10, normal), "\(step)")
        }
        #expect(kar_thread_niceness() == normal)  // the cooperative pool keeps its priority
    }

    @Test func runsJobsInTheOrderTheyCame() async {
        final class Order: Sendable { let values = Mutex<[Int]>([]) }
        let order = Order()
        await withTaskExecutorPreference(BackgroundExecutor.shared) {
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<50 {
                    group.addTask(executorPreference: BackgroundExecutor.shared) {
                        order.values.withLock { $0.append(index) }
                    }
                }
            }
        }
        #expect(order.values.withLock { $0 } == Array(0..<50))
    }
}
