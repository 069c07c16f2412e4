import Foundation
import Synchronization

/// Threads of their own for cache fills: reading images (pread) and decompressing block a thread, which must
/// not be one of the event loops nor one of Swift's cooperative pool (which other work, and other fills'
/// waiters, need). Run fills here with `Task(executorPreference:)`; tasks waiting on a single-flight fill
/// suspend and free their thread.
public final class FillExecutor: TaskExecutor, Sendable {
    private struct Queue: ~Copyable {
        var jobs: [UnownedJob] = []
        var head = 0
        var stopped = false
    }

    private let queue = Mutex(Queue())
    private let available = DispatchSemaphore(value: 0)
    public let threadCount: Int

    /// Starts `threads` worker threads (at least one).
    public init(threads: Int) {
        self.threadCount = max(1, threads)
        for index in 0..<self.threadCount {
            let thread = Thread { [self] in self.work() }
            thread.name = "pageshare-fill-\(index)"
            thread.start()
        }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        self.queue.withLock { queue in queue.jobs.append(unowned) }
        self.available.signal()
    }

    /// Lets the threads finish the jobs queued so far and exit.
    public func shutdown() {
        self.queue.withLock { $0.stopped = true }
        for _ in 0..<self.threadCount { self.available.signal() }
    }

    private func work() {
        while true {
            self.available.wait()
            let next = self.queue.withLock { queue -> UnownedJob?? in
                guard queue.head < queue.jobs.count else { return queue.stopped ? .some(nil) : nil }
                let job = queue.jobs[queue.head]
                queue.head += 1
                if queue.head > 1024 && queue.head * 2 > queue.jobs.count {
                    queue.jobs.removeFirst(queue.head)
                    queue.head = 0
                }
                return job
            }
            switch next {
            case .some(.some(let job)): job.runSynchronously(on: self.asUnownedTaskExecutor())
            case .some(.none): return
            case .none: continue
            }
        }
    }
}
