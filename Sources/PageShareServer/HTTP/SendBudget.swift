import NIOCore
import Synchronization

/// The daemon-wide bound on response bytes produced but not yet on the wire (queued in NIO, held back by a
/// peer's HTTP/2 flow-control window or a full socket), shared by every connection through its
/// ``SendAllowance``.
///
/// Each connection may always hold ``floorBytes`` (so a new or slow client is never stuck behind others);
/// beyond that it borrows from one pool of ``poolBytes``, at most ``shareBytes`` in all, and only while its
/// writes are completing (a client that reads). Memory held for unsent responses is therefore at most
/// `poolBytes + connections × floorBytes`, whatever the clients do: a stalled reader holds its floor (and
/// what it borrowed before it stalled) until the send timeout closes it.
public final class SendBudget: Sendable {
    /// The pool connections borrow from beyond their floor.
    public let poolBytes: Int
    /// What one connection may hold without borrowing.
    public let floorBytes: Int
    /// The most one connection may hold, floor and borrowed together.
    public let shareBytes: Int
    /// A connection (or HTTP/2 stream) holding unsent bytes whose writes make no progress for this long is
    /// closed (reset), whatever else the client sends (nginx's `send_timeout`).
    public let sendTimeout: TimeAmount
    /// Bytes of the pool lent out now; may pass the pool by whole responses charged without waiting.
    private let borrowed = Atomic<Int>(0)
    /// Unsent bytes held by all connections (floors and borrowed), for `/metrics`.
    private let held = Atomic<Int>(0)
    private let timeouts = Atomic<Int>(0)

    /// - Parameters:
    ///   - poolBytes: the shared pool (e.g. 64 MiB).
    ///   - connections: the most connections open at once: the floor is the pool divided among them, within
    ///     16 KiB (one HTTP/2 DATA frame) and one body chunk.
    ///   - chunkBytes: the body chunk size (``DataPlane/Limits/chunkBytes``).
    public init(poolBytes: Int, connections: Int, chunkBytes: Int, sendTimeout: TimeAmount) {
        self.poolBytes = max(0, poolBytes)
        self.floorBytes = max(16 * 1024, min(chunkBytes, self.poolBytes / max(1, connections)))
        self.shareBytes = max(self.floorBytes, self.poolBytes / 8)
        self.sendTimeout = sendTimeout
    }

    /// Whether the pool has bytes left to borrow.
    var hasRoom: Bool { self.borrowed.load(ordering: .relaxed) < self.poolBytes }

    /// Takes `bytes` from the pool if that many are free.
    func borrow(_ bytes: Int) -> Bool {
        var current = self.borrowed.load(ordering: .relaxed)
        while current + bytes <= self.poolBytes {
            let (exchanged, original) = self.borrowed.compareExchange(
                expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Takes `bytes` from the pool whether or not they are free (a response already made).
    func charge(_ bytes: Int) { self.borrowed.add(bytes, ordering: .relaxed) }

    func giveBack(_ bytes: Int) { self.borrowed.subtract(bytes, ordering: .relaxed) }

    func adjustHeld(by delta: Int) { self.held.add(delta, ordering: .relaxed) }

    func countTimeout() { self.timeouts.add(1, ordering: .relaxed) }

    /// Unsent response bytes held now, daemon-wide.
    public var heldBytes: Int { self.held.load(ordering: .relaxed) }
    /// Bytes of the pool lent out now.
    public var borrowedBytes: Int { self.borrowed.load(ordering: .relaxed) }
    /// Connections and streams closed by the send timeout so far.
    public var sendTimeouts: Int { self.timeouts.load(ordering: .relaxed) }
}
