import NIOCore
import NIOHTTP1
import NIOHTTP2

/// One HTTP/2 stream's side of a response: writes its head and body as HEADERS and DATA frames through the
/// connection's ``HTTP2StreamsHandler``, with the stream's own backpressure.
///
/// Backpressure: bytes written but not yet on the wire (held back by the peer's flow-control window or a
/// full socket) are counted, and the stream is writable while they are under ``highWatermark``. A write
/// that carries a promise of its own (every body chunk: the send budget's) gives its count back when it
/// completes, and so does every ``markBytes``-th byte of writes without one; the count can then overstate by
/// less than `markBytes`, and since `markBytes < highWatermark` a marked write is always outstanding while
/// the stream is blocked. The time of the last give-back is the stream's progress for the send timeout.
///
/// The latest frame is held back until the next write, so that END_STREAM rides on the last HEADERS or DATA
/// frame of a response instead of costing an empty DATA frame.
final class HTTP2StreamWriter: ResponseWriter {
    static let highWatermark = 64 * 1024
    static let markBytes = 32 * 1024

    let id: HTTP2StreamID
    /// The connection's handler; it closes every stream before it goes away (``close()``), and nothing
    /// reaches it from a closed stream.
    private unowned let connection: HTTP2StreamsHandler
    private(set) var responder: RequestResponder?
    private var held: HTTP2Frame.FramePayload?
    private var heldPromise: EventLoopPromise<Void>?
    /// Body bytes written whose write has not been seen to complete.
    private var unsentBytes = 0
    /// Body bytes written since the last marked write.
    private var unmarkedBytes = 0
    /// When the unsent bytes last made progress (a marked write completed, or bytes written when none were
    /// unsent): the send timeout resets a stream stalled since too long.
    private var progressed = NIODeadline.distantPast
    private(set) var isClosed = false
    /// A write failed: the stream was reset (its close not reported yet) or the connection is going; nothing
    /// more is worth writing.
    private var writeFailed = false
    /// Request body bytes received and not yet given back to the peer's window of this stream.
    var unacknowledgedInbound = 0

    init(id: HTTP2StreamID, connection: HTTP2StreamsHandler) {
        self.id = id
        self.connection = connection
    }

    /// Makes the responder that answers this stream's request.
    func attach(plane: DataPlane, peer: ConnectionPeer, eventLoop: any EventLoop) -> RequestResponder {
        let responder = RequestResponder(plane: plane, peer: peer, eventLoop: eventLoop, writer: self)
        self.responder = responder
        return responder
    }

    /// The stream is gone (closed, reset, or the connection ended): nothing more is written, a held frame's
    /// promise fails (a lent page goes back), and the responder stops.
    func close() {
        guard !self.isClosed else { return }
        self.isClosed = true
        self.held = nil
        self.heldPromise?.fail(ChannelError.ioOnClosedChannel)
        self.heldPromise = nil
        self.responder?.detach()
        self.responder = nil
    }

    // MARK: ResponseWriter

    var allowance: SendAllowance? { self.connection.allowance }

    /// Whether the stream holds unsent bytes that have made no progress since `cutoff`.
    func isStalled(since cutoff: NIODeadline) -> Bool {
        !self.isClosed && self.unsentBytes > 0 && self.progressed < cutoff
    }

    var isWritable: Bool {
        !self.isClosed && !self.writeFailed && self.unsentBytes < Self.highWatermark
            && self.connection.isChannelWritable
    }

    func writeHead(_ head: HTTPResponseHead) {
        guard !self.isClosed else { return }
        self.hold(.headers(.init(headers: HTTP2Messages.block(of: head))), promise: nil)
    }

    func writeBody(_ bytes: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard !self.isClosed else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let count = bytes.readableBytes
        if self.unsentBytes == 0 { self.progressed = .now() }
        self.unsentBytes += count
        self.unmarkedBytes += count
        var promise = promise
        // A write with a promise of its own is marked too (it costs nothing more).
        if self.unmarkedBytes >= Self.markBytes || promise != nil {
            let marked = self.unmarkedBytes
            self.unmarkedBytes = 0
            let tracked = promise ?? self.connection.eventLoop.makePromise()
            tracked.futureResult.assumeIsolated().whenComplete { result in
                if case .failure = result { self.writeFailed = true }
                self.sent(marked)
            }
            promise = tracked
        }
        self.hold(.data(.init(data: .byteBuffer(bytes))), promise: promise)
    }

    func writeEnd(keepAlive: Bool) {
        guard !self.isClosed else { return }
        switch self.held {
        case .headers(var headers):
            headers.endStream = true
            self.held = .headers(headers)
        case .data(var data):
            data.endStream = true
            self.held = .data(data)
        default:
            self.held = .data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))
        }
        self.writeHeld()
        self.connection.flush()
    }

    func flush() {
        guard !self.isClosed else { return }
        self.writeHeld()
        self.connection.flush()
    }

    func abort() { self.abort(.internalError) }

    /// Resets the stream with `code` (a held frame is dropped, its promise failed).
    func abort(_ code: HTTP2ErrorCode) {
        guard !self.isClosed else { return }
        self.held = nil
        self.heldPromise?.fail(ChannelError.ioOnClosedChannel)
        self.heldPromise = nil
        self.connection.write(HTTP2Frame(streamID: self.id, payload: .rstStream(code)), promise: nil)
        self.connection.flush()
    }

    // MARK: Frames

    private func hold(_ payload: HTTP2Frame.FramePayload, promise: EventLoopPromise<Void>?) {
        self.writeHeld()
        self.held = payload
        self.heldPromise = promise
    }

    private func writeHeld() {
        guard let payload = self.held else { return }
        let promise = self.heldPromise
        self.held = nil
        self.heldPromise = nil
        self.connection.write(HTTP2Frame(streamID: self.id, payload: payload), promise: promise)
    }

    /// A marked write completed (or failed): its bytes, and every earlier one of the stream, are off the
    /// stream's books.
    private func sent(_ count: Int) {
        let wasWritable = self.unsentBytes < Self.highWatermark
        self.unsentBytes -= count
        self.progressed = .now()
        guard !self.isClosed, !self.writeFailed, !wasWritable, self.unsentBytes < Self.highWatermark else { return }
        self.responder?.writabilityChanged()
    }
}
