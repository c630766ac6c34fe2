import CLinuxShims
import ServiceLifecycle
import Support
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One thread of its own, at a lower CPU priority than the rest of the process, for the background loops (cluster
/// monitor, leader election, reconciler). Not for work that holds a lock deliveries need (the memory trimmer holds
/// malloc's arena locks): preempted at low priority, it would make them wait.
///
/// Decoding one page of 500 runner Jobs takes about 20 ms of CPU; on the cooperative pool (one thread per core) it
/// would hold up whichever delivery is queued behind it. On this thread the kernel preempts the background work for
/// any delivery thread that wakes, and gives it the CPU the deliveries leave (niceness 10 weighs about a tenth of a
/// normal thread when both want the same core; it never starves).
package final class BackgroundExecutor: TaskExecutor, @unchecked Sendable {
    /// The process's one background thread.
    package static let shared = BackgroundExecutor(niceness: 10)

    private let queue = Mutex<[UnownedJob]>([])
    /// Counts queued jobs; the thread sleeps on it. Allocated once and never freed: the thread lives as long as
    /// the process.
    private let pending: UnsafeMutablePointer<sem_t>

    private init(niceness: Int32) {
        pending = .allocate(capacity: 1)
        sem_init(pending, 0, 0)
        LoopThread { [self] in
            _ = kar_lower_thread_priority(niceness)  // best effort: a refusal only leaves the normal priority
            drain()
        }.start()
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.withLock { $0.append(job) }
        sem_post(pending)
    }

    /// One job per count of the semaphore, in the order they came (the queue stays a few jobs long).
    private func drain() -> Never {
        while true {
            while sem_wait(pending) != 0 {}  // interrupted by a signal: wait again
            let job = queue.withLock { $0.removeFirst() }
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// A background service run on the background thread: the tasks it awaits, its child tasks and its decoding all
/// stay there.
struct BackgroundService: Service {
    let base: any Service
    let executor: BackgroundExecutor

    func run() async throws {
        try await withTaskExecutorPreference(executor) { try await base.run() }
    }
}
