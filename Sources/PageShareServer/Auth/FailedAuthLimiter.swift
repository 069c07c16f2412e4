import NIOCore
import Synchronization

/// Slows down token guessing: a client address with `maximumFailures` failed authentications within
/// `window` has its further failures answered 429 until that window ends (a valid credential still
/// passes: the caller checks it first).
final class FailedAuthLimiter: Sendable {
    private let maximumFailures: Int
    private let window: TimeAmount
    /// Failures by client, with the start of each client's window. Bounded by `maximumClients`: when full,
    /// windows that ended are dropped, then clients still below the limit, oldest first; a limited client
    /// stays until its window ends, so a flood of new addresses cannot free it (while the table is full of
    /// limited clients, a new client's failures go uncounted).
    private let failures = Mutex<[String: (count: Int, since: NIODeadline)]>([:])
    /// Until when (uptime nanoseconds) some client may be limited: past it, the check for a client is one
    /// atomic load and no lock.
    private let limitedUntil = Atomic<Int64>(0)
    private let maximumClients = 10_000

    init(maximumFailures: Int = 10, window: TimeAmount = .seconds(60)) {
        self.maximumFailures = maximumFailures
        self.window = window
    }

    /// Seconds until `client` may try again, or nil when it is not limited.
    func retryAfter(client: String, now: NIODeadline = .now()) -> Int? {
        guard now.uptimeNanoseconds < UInt64(max(0, self.limitedUntil.load(ordering: .relaxed))) else { return nil }
        return self.failures.withLock { failures -> Int? in
            guard let entry = failures[client], entry.count >= self.maximumFailures else { return nil }
            let end = entry.since + self.window
            guard end > now else {
                failures[client] = nil
                return nil
            }
            return Int((end - now).nanoseconds / 1_000_000_000) + 1
        }
    }

    /// Counts a failed authentication of `client`; true when this failure makes it limited.
    @discardableResult
    func recordFailure(client: String, now: NIODeadline = .now()) -> Bool {
        self.failures.withLock { failures -> Bool in
            // The client's window, or a new one if it has none running.
            var entry = failures[client].flatMap { $0.since + self.window > now ? $0 : nil } ?? (count: 0, since: now)
            if entry.count == 0 && failures.count >= self.maximumClients {
                failures = failures.filter { $0.value.since + self.window > now }
                if failures.count >= self.maximumClients {
                    let unlimited = failures.filter { $0.value.count < self.maximumFailures }
                        .sorted { $0.value.since < $1.value.since }
                    for (client, _) in unlimited.prefix(failures.count - self.maximumClients / 2) {
                        failures[client] = nil
                    }
                }
                guard failures.count < self.maximumClients else { return false }
            }
            entry.count += 1
            failures[client] = entry
            guard entry.count == self.maximumFailures else { return false }
            self.noteLimited(until: entry.since + self.window)
            return true
        }
    }

    /// Clients with a failure window on record.
    var trackedClients: Int { self.failures.withLock { $0.count } }

    private func noteLimited(until end: NIODeadline) {
        let value = Int64(clamping: end.uptimeNanoseconds)
        var current = self.limitedUntil.load(ordering: .relaxed)
        while current < value {
            let (exchanged, original) = self.limitedUntil.compareExchange(
                expected: current, desired: value, ordering: .relaxed)
            if exchanged { break }
            current = original
        }
    }
}
