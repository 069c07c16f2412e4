import CNGHTTP2
import NIOCore
import NIOHTTP1

/// One HTTP/2 stream: its request as it arrives (fields, then body), and its side of the response, written
/// through the connection's libnghttp2 session with the stream's own backpressure.
///
/// The response head is submitted with the first body bytes, a flush or the end — whichever comes first —
/// so that a response without a body ends on its HEADERS frame. Body buffers wait in the stream until the
/// session's DATA frames take them: they go to the socket as they are (no copy), each frame's 9-byte header
/// before them.
///
/// Backpressure: bytes written but not yet on the wire (held back by the peer's flow-control window or a
/// full socket) are counted, and the stream is writable while they are under ``highWatermark``. A write
/// that carries a notice of its own (every body chunk: the send budget's) is marked, and so is every
/// ``markBytes``-th byte of writes without one: a marked write gives its count (and that of the unmarked
/// ones before it) back when it ends. The count can then overstate by less than `markBytes`, and since
/// `markBytes < highWatermark` a marked write is always outstanding while the stream is blocked. The time
/// of the last give-back is the stream's progress for the send timeout.
final class HTTP2Stream: ResponseWriter, WriteObserver {
    static let highWatermark = 64 * 1024
    static let markBytes = 32 * 1024

    let id: Int32
    /// The connection; it closes every stream before it goes away (``close()``).
    private unowned let connection: HTTP2Connection
    private(set) var responder: RequestResponder?

    // The request, as its HEADERS frames arrive.
    var method: String?
    var path: String?
    var fields = RequestFields()
    /// Bytes of the request's header list, counted as SETTINGS_MAX_HEADER_LIST_SIZE counts them.
    var headerListBytes = 0
    /// The header list went past the advertised limit: the fields after it were dropped, and the request
    /// is answered 431.
    var headerListTooLarge = false

    // The response.
    private var head: ResponseHead?
    private var submitted = false
    private var ended = false
    /// Body buffers not yet taken by a DATA frame, with the notice of each write and the bytes the stream
    /// gives back when it ends (0: not marked).
    private var pending = PendingBodyWrites()
    private var pendingBytes = 0
    /// The session asked for body bytes when there were none: it must be told when there are.
    private var deferred = false
    /// Body bytes written whose write has not been seen to complete.
    private var unsentBytes = 0
    /// Body bytes written since the last marked write.
    private var unmarkedBytes = 0
    /// When the unsent bytes last made progress: the send timeout resets a stream stalled since too long.
    private var progressed = NIODeadline.distantPast
    private(set) var isClosed = false
    /// A write failed: the stream was reset or the connection is going; nothing more is worth writing.
    private var writeFailed = false

    init(id: Int32, connection: HTTP2Connection) {
        self.id = id
        self.connection = connection
    }

    /// The request whose fields arrived, taken out of the stream; nil without `:method` or `:path`.
    func takeRequest() -> Request? {
        guard let method = self.method, let path = self.path else { return nil }
        // Moved, not copied: the fields hold a dozen optional strings.
        var fields = RequestFields()
        swap(&fields, &self.fields)
        return Request(method: HTTPMethod(rawValue: method), target: path, fields: fields)
    }

    /// Makes the responder that answers this stream's request.
    func attach(_ scope: ConnectionScope) -> RequestResponder {
        let responder = RequestResponder(scope: scope, writer: self)
        self.responder = responder
        return responder
    }

    /// The stream is gone (closed, reset, or the connection ended): nothing more is written, the notices of
    /// body bytes not sent are told so (lent pages go back), and the responder stops.
    func close() {
        guard !self.isClosed else { return }
        self.isClosed = true
        self.pendingBytes = 0
        if !self.pending.isEmpty {
            for (_, notice, _) in self.pending.removeAll() { notice?.tell(.failure(ChannelError.ioOnClosedChannel)) }
        }
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

    func writeHead(_ head: ResponseHead) {
        guard !self.isClosed else { return }
        self.head = head
    }

    func writeBody(_ bytes: ByteBuffer, notice: WriteNotice?) {
        guard !self.isClosed else {
            notice?.tell(.failure(ChannelError.ioOnClosedChannel))
            return
        }
        let count = bytes.readableBytes
        if self.unsentBytes == 0 { self.progressed = .now() }
        self.unsentBytes += count
        self.unmarkedBytes += count
        var marked = 0
        // A write with a notice of its own is marked too (it costs nothing more).
        if self.unmarkedBytes >= Self.markBytes || notice != nil {
            marked = self.unmarkedBytes
            self.unmarkedBytes = 0
        }
        self.pending.append((bytes, notice, marked))
        self.pendingBytes += count
        // Sent at the next flush or end (the responder flushes after each batch): the end of a body then
        // rides on its last DATA frame instead of costing an empty one.
        self.submitOrResume(hasBody: true)
    }

    func writeEnd(keepAlive: Bool) {
        guard !self.isClosed else { return }
        self.ended = true
        self.submitOrResume(hasBody: self.pendingBytes > 0)
        self.connection.sendSoon(flushing: true)
    }

    func flush() {
        guard !self.isClosed else { return }
        self.submitOrResume(hasBody: true)
        self.connection.sendSoon(flushing: true)
    }

    func abort() { self.abort(code: NGHTTP2_INTERNAL_ERROR.rawValue) }

    /// Resets the stream with `code`.
    func abort(code: UInt32) {
        guard !self.isClosed else { return }
        self.connection.session?.reset(self.id, code: code)
        self.connection.sendSoon(flushing: true)
    }

    // MARK: The session's side

    private func submitOrResume(hasBody: Bool) {
        if !self.submitted {
            guard let head = self.head else { return }
            self.submitted = true
            self.connection.session?.respond(self.id, fields: HTTP2ResponseFields(head: head), hasBody: hasBody)
        } else if self.deferred {
            self.deferred = false
            self.connection.session?.resume(self.id)
        }
    }

    /// How many body bytes the next DATA frame may take (at most `maximum`) and whether they end the body;
    /// nil when none are ready (the session waits for ``submitOrResume(hasBody:)``).
    func bodyReady(maximum: Int) -> (count: Int, end: Bool)? {
        guard self.pendingBytes > 0 else {
            if self.ended { return (0, true) }
            self.deferred = true
            return nil
        }
        let count = min(maximum, self.pendingBytes)
        return (count, self.ended && count == self.pendingBytes)
    }

    /// Hands the next `count` body bytes to `write`, whole buffers with their notices (the stream's own
    /// for a marked write after the writer's), the last one sliced if the frame ends inside it.
    func takeBody(_ count: Int, _ write: (ByteBuffer, WriteNotice?, WriteNotice?) -> Void) {
        var remaining = count
        self.pendingBytes -= count
        while remaining > 0, let oldestCount = self.pending.oldestByteCount {
            if oldestCount <= remaining {
                remaining -= oldestCount
                let first = self.pending.removeOldest()!
                write(first.bytes, first.notice, first.marked > 0 ? WriteNotice(self, bytes: first.marked) : nil)
            } else {
                let slice = self.pending.takeFromOldest(remaining)
                remaining = 0
                write(slice, nil, nil)
            }
        }
    }

    /// A marked write ended: its bytes, and every earlier one of the stream, are off the stream's books.
    func written(_ count: Int, _ result: Result<Void, any Error>) {
        if case .failure = result { self.writeFailed = true }
        self.sent(count)
    }

    private func sent(_ count: Int) {
        let wasWritable = self.unsentBytes < Self.highWatermark
        self.unsentBytes -= count
        // A stream left with nothing unsent cannot stall (and its next write starts the clock again): the
        // time is read only while bytes remain, not once per response.
        if self.unsentBytes > 0 { self.progressed = .now() }
        guard !self.isClosed, !self.writeFailed, !wasWritable, self.unsentBytes < Self.highWatermark else { return }
        self.responder?.writabilityChanged()
    }
}
