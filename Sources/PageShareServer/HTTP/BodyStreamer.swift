import NIOCore
import PageCache

/// Where a file body's bytes come from: the shared cache (``PageCache/CachedFile``), or a test's fake.
protocol BodySource: Sendable {
    /// Lends the resident pages from `offset` on, up to `maxBytes`; nil if the page there is not resident.
    func borrowResident(at offset: UInt64, maxBytes: Int) -> PageLoan?
    /// Copies the resident bytes from `offset` on into `buffer`; returns how many (0: a miss at `offset`).
    func readResident(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Int
    /// Reads through a miss and lends what it published (nil where pages are not lent).
    func readLent(at offset: UInt64, maxBytes: Int) async throws -> PageLoan?
    /// Reads through a miss into `buffer`; returns how many bytes (fewer only at the end of the file).
    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) async throws -> Int
}

extension CachedFile: BodySource {}

/// Told how a body ended.
protocol BodyStreamerOwner: AnyObject {
    /// Every byte of the body was handed to the writer: the response ends.
    func bodyFinished(sentBytes: Int)
    /// A read failed (`problem` says why) before the body was complete; `headSent` tells whether the head
    /// went out already (the client must then see a truncated body, never wrong bytes).
    func bodyFailed(_ problem: Problem, headSent: Bool, sentBytes: Int)
}

/// Sends one file body — a response head, then literal bytes and ranges of a file — through a
/// ``ResponseWriter``, chunk by chunk, as a small state machine:
///
/// - `sending`: chunks are produced while the writer is writable and the connection's ``SendAllowance``
///   has room. Resident pages are lent by the cache (or copied: ``PageWrites``) on the event loop.
/// - `waitingForWriter`: the writer is full; ``writabilityChanged()`` goes on.
/// - `waitingForRoom`: no room in the allowance; queued there, ``allowanceAvailable()`` goes on.
/// - `waitingForOwnWrites`: the body holds its part of the allowance already; one of its own writes
///   completing goes on.
/// - `filling`: a chunk with a missing page is read on the cache's threads; its bytes go on.
/// - `finished` / `stopped`: every byte was handed to the writer (the owner is told), or the body stopped
///   (a read failed, or ``stop()``: the connection or stream went away).
///
/// The head is held until the first file bytes are read, so that a failing first read still gets a proper
/// error status; it goes out early only when the body must wait for room. Used on the event loop only.
final class BodyStreamer<Source: BodySource>: AllowanceWaiter, WriteObserver {
    enum State: Equatable {
        case idle, sending, waitingForWriter, waitingForRoom, waitingForOwnWrites, filling, finished, stopped
    }

    /// How chunks are made.
    struct Settings {
        /// The largest chunk produced at once.
        var chunkBytes: Int
        var pageWrites: PageWrites
        /// Where misses are read (the cache's fill threads).
        var fillExecutor: any TaskExecutor
        var allocator = ByteBufferAllocator()
    }

    private(set) var state = State.idle
    private let source: Source
    private let body: ResponseBody
    private let settings: Settings
    private let eventLoop: any EventLoop
    private let allowance: SendAllowance?
    private var writer: (any ResponseWriter)?
    /// Held strongly until the body ends or stops (the owner holds the streamer too; the cycle ends then).
    private var owner: (any BodyStreamerOwner)?
    /// The head, until it is written.
    private var head: ResponseHead?
    /// Literal bytes waiting for the head.
    private var heldLiterals: [ByteBuffer] = []
    private var segmentIndex = 0
    /// Bytes of the current segment already produced.
    private var segmentDone: UInt64 = 0
    /// Bytes taken from the allowance and not yet produced.
    private var granted = 0
    /// Bytes taken from the allowance and not yet given back (produced or not, written or not).
    private(set) var bytesHeld = 0
    /// Body bytes handed to the writer.
    private(set) var sentBytes = 0
    var isWaitingForAllowance = false
    /// Set while ``pump()`` runs: a write can report a writability change synchronously, which must not
    /// start a second pump.
    private var pumping = false
    /// Set when a change arrived during a pump: the pump goes round once more.
    private var pumpAgain = false

    init(
        source: Source, head: ResponseHead, body: ResponseBody, writer: any ResponseWriter,
        owner: any BodyStreamerOwner, settings: Settings, eventLoop: any EventLoop
    ) {
        self.source = source
        self.head = head
        self.body = body
        self.writer = writer
        self.allowance = writer.allowance
        self.owner = owner
        self.settings = settings
        self.eventLoop = eventLoop
    }

    var headSent: Bool { self.head == nil }

    /// Starts sending.
    func start() {
        guard self.state == .idle else { return }
        self.state = .sending
        self.pump()
    }

    /// The writer may take more bytes again.
    func writabilityChanged() {
        guard self.state == .sending || self.state == .waitingForWriter, self.writer?.isWritable == true else {
            return
        }
        self.pump()
    }

    /// The allowance has room again.
    func allowanceAvailable() {
        guard self.state == .waitingForRoom else { return }
        self.state = .sending
        self.pump()
    }

    /// The connection or stream is gone: nothing more is written, room taken for bytes not produced goes
    /// back, a fill in flight drops its bytes. Writes in flight still give back their room as they end.
    func stop() {
        guard self.state != .stopped else { return }
        self.releaseGranted()
        self.allowance?.cancelWait(self)
        self.state = .stopped
        self.writer = nil
        self.owner = nil
        self.heldLiterals = []
    }

    /// Room taken for bytes that will not be produced goes back.
    private func releaseGranted() {
        guard self.granted > 0 else { return }
        self.allowance?.release(self.granted, written: false)
        self.bytesHeld -= self.granted
        self.granted = 0
    }

    // MARK: Producing chunks

    private func pump() {
        guard !self.pumping else {
            self.pumpAgain = true
            return
        }
        self.pumping = true
        defer { self.pumping = false }
        repeat {
            self.pumpAgain = false
            self.pumpOnce()
        } while self.pumpAgain
    }

    private func pumpOnce() {
        guard self.state == .sending || self.state == .waitingForWriter else { return }
        self.state = .sending
        let segments = self.body.segments
        while self.segmentIndex < segments.count {
            // A write may stop the body (a failed write, the stream gone) or fill the writer; until the head is
            // out, the first file bytes are read whatever the writer says.
            guard self.state == .sending, let writer = self.writer else { return }
            guard writer.isWritable || !self.headSent else {
                self.state = .waitingForWriter
                return writer.flush()
            }
            switch segments[self.segmentIndex] {
            case .bytes(let bytes):
                self.segmentIndex += 1
                self.sentBytes += bytes.readableBytes
                if self.headSent { writer.writeBody(bytes, notice: nil) } else { self.heldLiterals.append(bytes) }
            case .file(let offset, let count):
                let position = offset + self.segmentDone
                var wanted = Int(min(UInt64(self.settings.chunkBytes), count - self.segmentDone))
                if let allowance = self.allowance {
                    if self.granted == 0 {
                        // No room: the head goes out now rather than with the first chunk (the client learns
                        // the status while the body waits), and the body waits for its own writes to
                        // complete (it holds its part already) or for the connection's to make room.
                        if allowance.isStreamPartHeld(self.bytesHeld) {
                            self.state = .waitingForOwnWrites
                            self.sendHead()
                            return writer.flush()
                        }
                        self.granted = allowance.grant(upTo: wanted, streamHolds: self.bytesHeld)
                        guard self.granted > 0 else {
                            self.state = .waitingForRoom
                            self.sendHead()
                            allowance.wait(self)
                            return writer.flush()
                        }
                        self.bytesHeld += self.granted
                    }
                    wanted = min(wanted, self.granted)
                }
                let ready: Int
                switch self.settings.pageWrites {
                case .lend:
                    let loan = self.source.borrowResident(at: position, maxBytes: wanted)
                    if let loan { self.emit(.lent(loan)) }
                    ready = loan?.byteCount ?? 0
                case .copy:
                    var buffer = self.settings.allocator.buffer(capacity: wanted)
                    let source = self.source
                    ready = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: wanted) { memory in
                        source.readResident(
                            at: position, into: UnsafeMutableRawBufferPointer(rebasing: memory[0..<wanted]))
                    }
                    if ready > 0 { self.emit(.filled(buffer)) }
                }
                if ready < wanted, self.state == .sending {
                    self.state = .filling
                    self.fill(at: position + UInt64(ready), count: wanted - ready)
                    self.writer?.flush()
                    return
                }
            }
        }
        guard self.state == .sending else { return }
        self.state = .finished
        self.releaseGranted()
        let owner = self.owner
        self.owner = nil
        self.writer = nil
        owner?.bodyFinished(sentBytes: self.sentBytes)
    }

    /// File bytes ready to send: pages lent by the cache, or bytes copied from resident pages or read by a fill.
    private enum Chunk {
        case lent(PageLoan)
        case filled(ByteBuffer)

        var byteCount: Int {
            switch self {
            case .lent(let loan): loan.byteCount
            case .filled(let buffer): buffer.readableBytes
            }
        }
    }

    /// Writes the held head and literal bytes, if not yet sent.
    private func sendHead() {
        guard let head = self.head, let writer = self.writer else { return }
        self.head = nil
        writer.writeHead(head)
        for bytes in self.heldLiterals { writer.writeBody(bytes, notice: nil) }
        self.heldLiterals = []
    }

    /// Writes file bytes (after the held head and literal bytes) and moves on. The state moves before the
    /// writes, which may re-enter. Lent pages go out as views of the cache's memory; the loan goes with the
    /// last write's notice, so the pages cannot be reused while NIO still holds them.
    private func emit(_ chunk: Chunk) {
        let count = chunk.byteCount
        self.segmentDone += UInt64(count)
        self.granted = max(0, self.granted - count)
        self.sentBytes += count
        if case .file(_, let length) = self.body.segments[self.segmentIndex], self.segmentDone == length {
            self.segmentIndex += 1
            self.segmentDone = 0
        }
        self.sendHead()
        guard let writer = self.writer else { return }
        switch chunk {
        case .filled(let buffer):
            writer.writeBody(buffer, notice: self.allowance == nil ? nil : WriteNotice(self, bytes: count))
        case .lent(let loan):
            for page in loan.dropLast() { writer.writeBody(page, notice: nil) }
            writer.writeBody(loan[loan.endIndex - 1], notice: WriteNotice(self, bytes: count, loan: loan))
        }
    }

    /// A chunk's write ended: its room goes back, and a body held back by its own unsent bytes goes on. A
    /// failed write means the stream or connection is gone (a reset's dropped frames fail before the stream's
    /// close is reported): the body stops rather than produce chunks that are dropped in turn.
    func written(_ count: Int, _ result: Result<Void, any Error>) {
        guard let allowance = self.allowance else { return }
        self.bytesHeld -= count
        allowance.release(count, after: result)
        if case .failure = result {
            self.stop()
        } else if self.state == .waitingForOwnWrites {
            self.state = .sending
            self.pump()
        }
    }

    /// Reads `count` bytes at `offset` through the cache (which runs it on its fill threads), then goes on.
    /// Where pages are lent, the bytes a miss just published are lent too instead of copied out; the pump
    /// asks again for whatever the loan did not cover.
    private func fill(at offset: UInt64, count: Int) {
        let promise = self.eventLoop.makePromise(of: Chunk.self)
        let (source, allocator) = (self.source, self.settings.allocator)
        let lend = self.settings.pageWrites == .lend
        Task(executorPreference: self.settings.fillExecutor) {
            do {
                if lend, let loan = try await source.readLent(at: offset, maxBytes: count) {
                    return promise.succeed(.lent(loan))
                }
                var buffer = allocator.buffer(capacity: count)
                let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
                defer { scratch.deallocate() }
                let read = try await source.read(at: offset, into: scratch)
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: scratch[0..<read]))
                promise.succeed(.filled(buffer))
            } catch {
                promise.fail(error)
            }
        }
        promise.futureResult.assumeIsolated().whenComplete { result in
            guard self.state == .filling else { return }  // stopped meanwhile
            self.state = .sending
            switch result {
            case .success(.lent(let loan)):
                self.emit(.lent(loan))
                self.pump()
            case .success(.filled(let buffer)) where buffer.readableBytes == count:
                self.emit(.filled(buffer))
                self.pump()
            case .success:
                self.fail(Problem.imageReadError("the file ended early"))
            case .failure(let error):
                self.fail(Problem(for: error, target: nil))
            }
        }
    }

    /// A read failed: the body stops and the owner answers (an error status before the head, a truncated
    /// body after).
    private func fail(_ problem: Problem) {
        let (owner, headSent) = (self.owner, self.headSent)
        self.stop()
        owner?.bodyFailed(problem, headSent: headSent, sentBytes: self.sentBytes)
    }
}
