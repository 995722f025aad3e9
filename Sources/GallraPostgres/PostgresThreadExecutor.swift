// Foundation, not FoundationEssentials: Thread and NSCondition are the dedicated thread and its wake-up.
import Foundation

/// A serial executor that runs its jobs on one dedicated thread of its own.
///
/// A ``PostgresConnection`` runs on one of these so that waiting for the server (in `poll(2)`) never parks a
/// thread of Swift's cooperative pool, which has as many threads as cores (two here). Linux has no Dispatch
/// serial executor to borrow, hence a plain thread with a condition variable. The thread ends once its owner
/// calls ``shutdown()`` and the queued jobs have run.
final class PostgresThreadExecutor: SerialExecutor, @unchecked Sendable {
    // `condition` guards `jobs` and `stopping`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var head = 0
    private var stopping = false
    private let thread: Thread
    nonisolated(unsafe) private var threadID: pthread_t?

    init(name: String) {
        let box = ThreadBox()
        thread = Thread { box.executor?.runLoop() }
        thread.name = name
        thread.stackSize = 1 << 20
        box.executor = self
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    func checkIsolated() {
        guard let threadID, pthread_equal(threadID, pthread_self()) != 0 else {
            preconditionFailure("not on the connection's thread")
        }
    }

    /// Lets the thread end after the jobs already queued.
    func shutdown() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func runLoop() {
        threadID = pthread_self()
        while true {
            condition.lock()
            while head == jobs.count && !stopping {
                condition.wait()
            }
            if head == jobs.count {
                condition.unlock()
                return
            }
            let job = jobs[head]
            head += 1
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                head = 0
            }
            condition.unlock()
            job.runSynchronously(on: asUnownedSerialExecutor())
        }
    }
}

/// Hands the executor to its thread's closure, which must exist before `self` is fully initialized.
private final class ThreadBox: @unchecked Sendable {
    var executor: PostgresThreadExecutor?
}
