import Synchronization

/// Readahead work in flight on the cache's fill executor, kept so that it can be waited for (tests,
/// shutdown) and so that no task outlives its tracking.
final class ReadaheadTasks: Sendable {
    private let executor: FillExecutor
    private let tasks = Mutex<(next: Int, running: [Int: Task<Void, Never>])>((0, [:]))

    init(executor: FillExecutor) { self.executor = executor }

    /// Runs `work` on the fill executor.
    func start(_ work: @escaping @Sendable () async -> Void) {
        self.tasks.withLock { state in
            let id = state.next
            state.next += 1
            state.running[id] = Task(executorPreference: self.executor) {
                await work()
                _ = self.tasks.withLock { $0.running.removeValue(forKey: id) }
            }
        }
    }

    /// Waits for the work started so far (and what it starts in turn).
    func drain() async {
        while let task = self.tasks.withLock({ $0.running.values.first }) {
            await task.value
        }
    }
}
