import Logging
import NIOCore
import Synchronization

/// The open connections, for the connection limits and shutdown.
///
/// At the limit a new connection is not simply refused: the oldest connection that has not completed a
/// request yet is closed to make room (a slowloris client trickling request heads, or a port scan, is
/// shed before a client that is being served), and only when every connection has completed one is the
/// newcomer refused. An optional limit per client address bounds what one address can hold. Refusals are
/// logged at most once per ten seconds, with their count, not once each.
final class ConnectionTable: Sendable {
    private struct Entry {
        let channel: any Channel
        let address: String
        let progress: ConnectionProgress
        let accepted: NIODeadline
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var byAddress: [String: Int] = [:]
        var refusedSinceLog = 0
        var lastLog = NIODeadline.uptimeNanoseconds(0)
    }

    private let maximum: Int
    private let maximumPerAddress: Int
    private let state = Mutex(State())

    /// - Parameter maximumPerAddress: 0 for no limit per address.
    init(maximum: Int, maximumPerAddress: Int) {
        self.maximum = maximum
        self.maximumPerAddress = maximumPerAddress
    }

    /// What became of a new connection.
    enum Admission {
        case admitted
        /// Admitted in place of `shed`, which the caller closes.
        case admittedShedding(any Channel)
        case refused(reason: String)
    }

    /// Admits `channel` from `address`, or refuses it; an admitted one leaves the table when it closes.
    func admit(_ channel: any Channel, address: String, progress: ConnectionProgress, logger: Logger) -> Admission {
        let id = ObjectIdentifier(channel)
        let now = NIODeadline.now()
        let admission = self.state.withLock { state -> Admission in
            if self.maximumPerAddress > 0, state.byAddress[address, default: 0] >= self.maximumPerAddress {
                return .refused(reason: "at the limit per address")
            }
            var shed: (any Channel)? = nil
            if state.entries.count >= self.maximum {
                let idle = state.entries.filter { !$0.value.progress.completedRequest.load(ordering: .relaxed) }
                guard let oldest = idle.min(by: { $0.value.accepted < $1.value.accepted }) else {
                    return .refused(reason: "at the connection limit")
                }
                state.entries[oldest.key] = nil
                state.byAddress[oldest.value.address, default: 1] -= 1
                if state.byAddress[oldest.value.address] == 0 { state.byAddress[oldest.value.address] = nil }
                shed = oldest.value.channel
            }
            state.entries[id] = Entry(channel: channel, address: address, progress: progress, accepted: now)
            state.byAddress[address, default: 0] += 1
            return shed.map { .admittedShedding($0) } ?? .admitted
        }
        switch admission {
        case .refused(let reason):
            self.noteRefused(reason, logger: logger)
        case .admitted, .admittedShedding:
            channel.closeFuture.whenComplete { _ in self.remove(id, address: address) }
        }
        return admission
    }

    /// The channels open now.
    var channels: [any Channel] { self.state.withLock { $0.entries.values.map(\.channel) } }

    var isEmpty: Bool { self.state.withLock { $0.entries.isEmpty } }

    private func remove(_ id: ObjectIdentifier, address: String) {
        self.state.withLock { state in
            guard state.entries.removeValue(forKey: id) != nil else { return }
            state.byAddress[address, default: 1] -= 1
            if state.byAddress[address] == 0 { state.byAddress[address] = nil }
        }
    }

    private func noteRefused(_ reason: String, logger: Logger) {
        let now = NIODeadline.now()
        let count = self.state.withLock { state -> Int? in
            state.refusedSinceLog += 1
            guard now - state.lastLog >= .seconds(10) else { return nil }
            state.lastLog = now
            defer { state.refusedSinceLog = 0 }
            return state.refusedSinceLog
        }
        if let count {
            logger.warning("connections refused", metadata: ["count": "\(count)", "reason": "\(reason)"])
        }
    }
}
