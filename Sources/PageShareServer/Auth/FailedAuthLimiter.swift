import NIOCore
import Synchronization

/// Slows down token guessing: a client address with `maximumFailures` failed authentications within
/// `window` is refused (429) until that window ends, whatever it sends.
final class FailedAuthLimiter: Sendable {
    private let maximumFailures: Int
    private let window: TimeAmount
    /// Failures by client, with the start of each client's window. Bounded: at `maximumClients`, windows
    /// that ended are dropped, and if none has, the oldest half.
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
                    let keep = failures.sorted { $0.value.since > $1.value.since }.prefix(self.maximumClients / 2)
                    failures = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
                }
            }
            entry.count += 1
            failures[client] = entry
            guard entry.count == self.maximumFailures else { return false }
            self.noteLimited(until: entry.since + self.window)
            return true
        }
    }

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
