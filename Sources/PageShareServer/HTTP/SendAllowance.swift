import Logging
import NIOCore

/// Something that waits in a ``SendAllowance``'s queue for room: a request to answer, a body to go on.
protocol AllowanceWaiter: AnyObject {
    /// Set while queued.
    var isWaitingForAllowance: Bool { get set }
    /// There is room: called in turn. A waiter that finds too little waits again (``SendAllowance/wait(_:)``)
    /// and keeps its place at the front.
    func allowanceAvailable()
}

/// One connection's part of the ``SendBudget``: the response bytes it holds produced but unsent, the
/// requests and body streams waiting for room (answered first come, first served), and the send timeout.
/// Used on the connection's event loop only.
///
/// Bytes are taken before a body chunk is produced (``grant(upTo:)``) or when a whole response is made
/// (``charge(_:)``), and given back when their write completes or fails (``release(_:written:)``); a
/// completed write is the evidence that the client reads, which lets the connection borrow beyond its floor
/// for a second. While it holds bytes a timer checks for progress: none for the send timeout closes the
/// connection (``onTimeout``), and ``onTick`` lets HTTP/2 reset single stalled streams.
final class SendAllowance: WriteObserver {
    /// How long a completed write lets the connection borrow beyond its floor.
    static let progressWindow = TimeAmount.seconds(1)

    let budget: SendBudget
    private let eventLoop: any EventLoop
    /// Unsent bytes this connection holds.
    private(set) var held = 0
    /// The part of `held` beyond the floor, taken from the pool: always `max(0, held - floor)`.
    private var borrowed = 0
    private var lastCompletion = NIODeadline.distantPast
    /// When the held bytes last made progress: a completed write, or bytes taken when none were held.
    private var stalledSince = NIODeadline.distantPast
    /// Waiting for room, in arrival order.
    private var waiters: [any AllowanceWaiter] = []
    private var waking = false
    private var wakeAgain = false
    private var timer: Scheduled<Void>?
    private var isClosed = false
    /// Closes the connection: it held bytes and none of its writes completed for the send timeout.
    var onTimeout: (() -> Void)?
    /// Called on every check with the time before which a stream's last progress is too old.
    var onTick: ((NIODeadline) -> Void)?

    init(budget: SendBudget, eventLoop: any EventLoop) {
        self.budget = budget
        self.eventLoop = eventLoop
    }

    /// An allowance for the connection of `context`, which the send timeout closes (logged at debug).
    ///
    /// The closure holds the channel strongly until ``close()`` drops it (the handlers call it when they are
    /// removed): a weak reference would give the object a side table, and every retain of it — NIO retains
    /// contexts and channels on every event — the runtime's slow path.
    convenience init(budget: SendBudget, closing context: ChannelHandlerContext, logger: Logger) {
        self.init(budget: budget, eventLoop: context.eventLoop)
        let channel = context.channel
        self.onTimeout = {
            logger.debug("send timeout: closing a connection whose writes made no progress")
            channel.close(promise: nil)
        }
    }

    /// Whether a new request may be answered now: the connection holds less than its floor, or less than its
    /// share while the pool has room. (Answering a file request costs nothing until its body is produced,
    /// chunk by chunk within ``grant(upTo:)``; a whole response is made at once and charged.)
    var mayStart: Bool {
        self.held < self.budget.floorBytes || (self.held < self.budget.shareBytes && self.budget.hasRoom)
    }

    private var isReading: Bool { NIODeadline.now() - self.lastCompletion < Self.progressWindow }

    /// A stream's part while the connection does not read: a quarter of the floor. One stream whose window
    /// stays shut then holds a quarter, and the connection's other streams still move (their completed writes
    /// are the evidence that lets the connection borrow again).
    private var streamPart: Int { self.budget.floorBytes / 4 }

    /// Whether a stream holding `bytes` has its part already: it waits for its own writes, not in the queue.
    func isStreamPartHeld(_ bytes: Int) -> Bool { bytes >= self.streamPart && !self.isReading }

    /// Takes room for up to `wanted` bytes of a body for a stream holding `streamHolds` already. While the
    /// connection reads: all of them, borrowed from the pool beyond the floor, within the connection's share.
    /// Otherwise (a new connection, a client that stopped reading, an empty pool): up to the stream's part,
    /// within the floor. Nothing if there is no room: the caller waits.
    func grant(upTo wanted: Int, streamHolds: Int = 0) -> Int {
        let floor = self.budget.floorBytes
        if self.held + wanted <= self.budget.shareBytes && self.isReading {
            let needed = max(0, self.held + wanted - floor) - self.borrowed
            if needed <= 0 || self.budget.borrow(needed) {
                self.borrowed += max(0, needed)
                self.take(wanted)
                return wanted
            }
        }
        let small = min(wanted, self.streamPart - streamHolds)
        guard small > 0, self.held + small <= floor else { return 0 }
        self.take(small)
        return small
    }

    /// Counts a response that is already made (a JSON body, a problem), beyond the floor from the pool
    /// whether or not it has room: it is bounded by ``mayStart`` having let the request in.
    func charge(_ bytes: Int) {
        let needed = max(0, self.held + bytes - self.budget.floorBytes) - self.borrowed
        if needed > 0 {
            self.budget.charge(needed)
            self.borrowed += needed
        }
        self.take(bytes)
    }

    private func take(_ bytes: Int) {
        if self.held == 0 {
            self.stalledSince = .now()
            self.armTimer()
        }
        self.held += bytes
        self.budget.adjustHeld(by: bytes)
    }

    /// Gives back `bytes`: `written` when their write completed (progress), else they were dropped (a failed
    /// write, a body that stopped). Waiters get the room.
    func release(_ bytes: Int, written: Bool) {
        guard bytes > 0 else { return }
        self.held -= bytes
        self.budget.adjustHeld(by: -bytes)
        let borrowed = max(0, self.held - self.budget.floorBytes)
        if borrowed < self.borrowed {
            self.budget.giveBack(self.borrowed - borrowed)
            self.borrowed = borrowed
        }
        if written {
            let now = NIODeadline.now()
            self.lastCompletion = now
            self.stalledSince = now
        }
        self.wakeWaiters()
    }

    /// A whole response charged (``charge(_:)``) was written, or failed to be.
    func written(_ bytes: Int, _ result: Result<Void, any Error>) {
        self.release(bytes, after: result)
    }

    /// Gives back the bytes of a write that completed (`result`).
    func release(_ bytes: Int, after result: Result<Void, any Error>) {
        if case .success = result {
            self.release(bytes, written: true)
        } else {
            self.release(bytes, written: false)
        }
    }

    /// `waiter` waits for room; it is called back (``AllowanceWaiter/allowanceAvailable()``) in turn.
    func wait(_ waiter: any AllowanceWaiter) {
        guard !self.isClosed else { return }
        waiter.isWaitingForAllowance = true
        self.waiters.append(waiter)
    }

    /// `waiter` no longer waits (its stream or connection went away).
    func cancelWait(_ waiter: any AllowanceWaiter) {
        guard waiter.isWaitingForAllowance else { return }
        waiter.isWaitingForAllowance = false
        self.waiters.removeAll { $0 === waiter }
    }

    /// The connection is gone: nobody waits any more and the timer stops. Bytes still held come back as their
    /// writes fail.
    func close() {
        self.isClosed = true
        for waiter in self.waiters { waiter.isWaitingForAllowance = false }
        self.waiters = []
        self.timer?.cancel()
        self.timer = nil
        self.onTimeout = nil
        self.onTick = nil
    }

    /// Calls waiters in order until one finds no room: it keeps its place at the front.
    private func wakeWaiters() {
        guard !self.waking else {
            self.wakeAgain = true
            return
        }
        self.waking = true
        defer { self.waking = false }
        repeat {
            self.wakeAgain = false
            while !self.waiters.isEmpty, !self.isClosed {
                let first = self.waiters.removeFirst()
                first.isWaitingForAllowance = false
                first.allowanceAvailable()
                if first.isWaitingForAllowance, let index = self.waiters.lastIndex(where: { $0 === first }) {
                    self.waiters.remove(at: index)
                    self.waiters.insert(first, at: 0)
                    break
                }
            }
        } while self.wakeAgain && !self.waiters.isEmpty && !self.isClosed
    }

    // MARK: Send timeout

    private func armTimer() {
        guard self.timer == nil, !self.isClosed else { return }
        let interval = TimeAmount.nanoseconds(max(100_000_000, self.budget.sendTimeout.nanoseconds / 4))
        self.timer = self.eventLoop.assumeIsolated().scheduleTask(in: interval) { self.check() }
    }

    private func check() {
        self.timer = nil
        guard self.held > 0, !self.isClosed else { return }
        let now = NIODeadline.now()
        if now - self.stalledSince >= self.budget.sendTimeout {
            self.budget.countTimeout()
            self.onTimeout?()
            return
        }
        self.onTick?(now - self.budget.sendTimeout)
        self.armTimer()
    }
}
