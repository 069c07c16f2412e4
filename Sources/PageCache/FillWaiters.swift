/// Readers waiting for fills in progress, by what is being filled (single flight: one reader fills, the
/// others wait and then look again). Kept inside its owner's lock; the continuations are resumed after the
/// lock is released.
struct FillWaiters<Key: Hashable & Sendable>: Sendable {
    private var waiting: [Key: [CheckedContinuation<Void, Never>]] = [:]

    /// Whether a fill of `key` is in progress.
    func isFilling(_ key: Key) -> Bool { self.waiting[key] != nil }

    /// A fill of `key` starts.
    mutating func begin(_ key: Key) { self.waiting[key] = [] }

    /// Queues `continuation` behind the fill of `key`; false when none is in progress (resume it at once).
    mutating func enqueue(_ continuation: CheckedContinuation<Void, Never>, behind key: Key) -> Bool {
        guard self.waiting[key] != nil else { return false }
        self.waiting[key]!.append(continuation)
        return true
    }

    /// The fill of `key` ended (published or given up): its waiters, to resume outside the lock.
    mutating func end(_ key: Key) -> [CheckedContinuation<Void, Never>] { self.waiting.removeValue(forKey: key) ?? [] }
}
