import CNGHTTP2
import Logging
import NIOCore
import NIOHTTP1

/// One HTTP/2 connection on libnghttp2 (``NGHTTP2Session``): received bytes go to the session, whose
/// callbacks assemble each stream's request and hand it to a ``RequestResponder`` writing through the
/// stream's ``HTTP2Stream``; what the session sends is written as it comes — frame bytes gathered into one
/// buffer, DATA payloads as the response's own buffers (lent cache pages) after their frame header, so a
/// body is never copied. SwiftNIO keeps the socket, the event loop and TLS.
///
/// The responses to one read burst go out with one flush; streams past the limit are refused with
/// RST_STREAM(REFUSED_STREAM), safe to retry; on shutdown (`ChannelShouldQuiesceEvent`) a GOAWAY naming
/// the last possible stream and a PING go first, the final GOAWAY (the last stream processed) when the
/// PING is acknowledged (RFC 9113 §6.8), and the connection closes once the streams in flight are done.
/// Idle connections are closed by ``IdleConnectionCloser``.
final class HTTP2Connection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let plane: DataPlane
    private let peer: ConnectionPeer
    /// Streams answered at once; further ones are refused with RST_STREAM(REFUSED_STREAM).
    private let maximumStreams: Int
    private let maximumHeaderListSize: Int
    private let budget: SendBudget
    /// The connection's room for unsent response bytes, shared by its streams.
    private(set) var allowance: SendAllowance?
    /// What the streams' responders share (set in `handlerAdded`).
    private var scope: ConnectionScope?
    private(set) var session: NGHTTP2Session?
    private var streams = StreamTable()
    /// Set between `handlerAdded` and `handlerRemoved`.
    private var context: ChannelHandlerContext?
    /// Frame bytes the session produced, written before the next DATA payload or at the end of a send.
    private var output: ByteBuffer
    /// Frames and body bytes written since the last flush, with the notices of the body writes.
    private let writes: NoticedWrites
    /// Set while a read burst is handled: sends and flushes wait for its end.
    private var reading = false
    private var sendPending = false
    private var flushPending = false
    private var quiescing = false
    private var finalGoAwaySent = false
    private var closing = false

    init(
        plane: DataPlane, peer: ConnectionPeer, maximumStreams: Int, maximumHeaderListSize: Int, budget: SendBudget,
        progress: ConnectionProgress
    ) {
        self.writes = NoticedWrites(progress: progress)
        self.plane = plane
        self.peer = peer
        self.maximumStreams = maximumStreams
        self.maximumHeaderListSize = maximumHeaderListSize
        self.budget = budget
        self.output = ByteBuffer()
    }

    /// `SETTINGS_MAX_CONCURRENT_STREAMS` for `limit` served streams: the limit plus an eighth (at least 16),
    /// so that the streams a client opens past the limit reach this handler, which refuses each on its own
    /// (REFUSED_STREAM: safe to retry); past the advertised value libnghttp2 refuses them itself.
    static func advertisedStreams(serving limit: Int) -> Int { limit + max(16, limit / 8) }

    var isChannelWritable: Bool { self.context?.channel.isWritable ?? false }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.output = context.channel.allocator.buffer(capacity: Self.outputCapacity)
        self.scope = ConnectionScope(plane: self.plane, peer: self.peer, eventLoop: context.eventLoop)
        let allowance = SendAllowance(budget: self.budget, closing: context, logger: self.plane.logger)
        // Strong, until the allowance's close() in handlerRemoved drops it: a weak reference would put every
        // retain of the connection (several per frame) on the runtime's slow path.
        allowance.onTick = { cutoff in self.resetStalledStreams(before: cutoff) }
        self.allowance = allowance
        self.session = NGHTTP2Session(
            reportingTo: self,
            limits: .init(
                advertisedStreams: Self.advertisedStreams(serving: self.maximumStreams),
                maximumHeaderListSize: self.maximumHeaderListSize, initialWindowSize: 1 << 20))
        self.sendSoon(flushing: true)  // the server's SETTINGS
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.writes.fail()
        self.allowance?.close()
        self.closeAll()
        self.session = nil
        self.scope = nil
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.writes.fail()
        self.allowance?.close()
        self.closeAll()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = self.unwrapInboundIn(data)
        guard let session = self.session, !self.closing else { return }
        self.reading = true
        self.scope?.readStarted()
        let accepted = bytes.withUnsafeReadableBytes { session.receive($0) }
        if !accepted {
            // A connection error: the session queued a GOAWAY; it goes out, then the connection closes.
            self.reading = false
            self.closeAfterWrites()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.reading = false
        self.scope?.readEnded()
        // What was read may have opened windows, asked for acknowledgements or reset streams: the session
        // knows what to send.
        if self.sendPending || self.flushPending || self.session?.wantsToWrite == true { self.send(flushing: true) }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent { self.quiesce() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            for stream in self.streams.all { stream.responder?.writabilityChanged() }
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.plane.logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    // MARK: Sending

    /// Sends what the session has to send now, or at the end of the read burst (and, with `flushing`,
    /// flushes then).
    func sendSoon(flushing: Bool = false) {
        if flushing { self.flushPending = true }
        if self.reading || self.session?.isBusy == true {
            self.sendPending = true
            return
        }
        self.send(flushing: self.flushPending)
    }

    private func send(flushing: Bool) {
        guard let session = self.session, let context = self.context else { return }
        var flushing = flushing
        // A write failing inside the session's send (a closed channel fails it at once) may make its
        // responder write again: that send was only noted, and is done here.
        repeat {
            self.sendPending = false
            flushing = flushing || self.flushPending
            self.flushPending = false
            if !session.send() { return self.closeAfterWrites() }
            self.writeOutput()
        } while self.sendPending
        if flushing { self.writes.flush(context: context) }
        if session.isFinished { self.closeAfterWrites() }
    }

    private func writeOutput() {
        guard self.output.readableBytes > 0, let context = self.context else { return }
        if self.output.readableBytes >= Self.handedOverOutputBytes {
            self.writes.write(self.output, notice: nil, context: context)
            self.output = context.channel.allocator.buffer(capacity: Self.outputCapacity)
        } else {
            // A few frames (a DATA frame's header before a large payload): copied out, and the output's
            // buffer kept for the next ones — a fresh buffer each would hold its capacity until written.
            var frames = context.channel.allocator.buffer(capacity: self.output.readableBytes)
            frames.writeBuffer(&self.output)
            self.output.clear()
            self.writes.write(frames, notice: nil, context: context)
        }
    }

    /// Closes once everything written so far is on the wire (closing at once would drop the end of the last
    /// response if the socket is full), lingering (``LingeringClose``): a client cut off for a flood of
    /// resets or CONTINUATION frames is still sending them, and a reset could discard the GOAWAY that says
    /// why. What arrives meanwhile is dropped (``closing``).
    private func closeAfterWrites() {
        guard !self.closing, let context = self.context else { return }
        self.closing = true
        self.session?.send()
        self.writeOutput()
        self.writes.writeHeld(context: context)
        let written = context.writeAndFlush(self.wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)))
        LingeringClose.close(context, after: written)
    }

    /// Graceful shutdown: with streams in flight, a GOAWAY naming the last possible stream and a PING;
    /// the final GOAWAY when the PING comes back (``sessionPingAcknowledged()``). Without, the final GOAWAY
    /// at once. The server closes what is left after its grace period.
    private func quiesce() {
        guard !self.quiescing, let session = self.session else { return }
        self.quiescing = true
        if self.streams.isEmpty {
            self.finalGoAwaySent = true
            session.goAway()
            self.closeAfterWrites()
        } else {
            session.announceShutdown()
            self.sendSoon(flushing: true)
        }
    }

    // MARK: The session's callbacks

    func sessionSend(_ bytes: UnsafeRawBufferPointer) {
        self.output.writeBytes(bytes)
    }

    /// The output buffer's size: frames and small payloads of a send gather there.
    static let outputCapacity = 16 * 1024
    /// Output of at least this many bytes is written as it is (a new buffer takes its place); less is copied.
    static let handedOverOutputBytes = 4096

    /// Body buffers up to this size are copied after their frame header into the output (one write and one
    /// iovec with the frames around them); larger ones, lent cache pages among them, go out as they are, the
    /// header before them. For a 4 KiB response a second write through the pipeline costs more than the copy.
    static let copiedPayloadBytes = 4096

    func sessionSendData(stream id: Int32, header: UnsafeRawBufferPointer, length: Int) {
        self.output.writeBytes(header)
        guard let context = self.context, let stream = self.streams.stream(id) else { return }
        stream.takeBody(length) { bytes, notice, streamNotice in
            if bytes.readableBytes <= Self.copiedPayloadBytes {
                var bytes = bytes
                self.output.writeBuffer(&bytes)
            } else {
                self.writeOutput()
                self.writes.write(bytes, notice: nil, context: context)
            }
            // Told when the flush's last write ends, which comes after these bytes.
            if let notice { self.writes.note(notice) }
            if let streamNotice { self.writes.note(streamNotice) }
        }
    }

    func sessionBodyReady(stream id: Int32, maximum: Int) -> (count: Int, end: Bool)? {
        guard let stream = self.streams.stream(id) else { return (0, true) }
        return stream.bodyReady(maximum: maximum)
    }

    func sessionBeginRequest(stream id: Int32) -> Int32 {
        // After a GOAWAY no new stream is answered (the session should not report one; this makes sure).
        guard !self.quiescing, self.streams.count < self.maximumStreams else {
            self.session?.reset(id, code: NGHTTP2_REFUSED_STREAM.rawValue)
            return 0
        }
        self.streams.insert(HTTP2Stream(id: id, connection: self))
        self.plane.metrics.streamOpened()
        return 0
    }

    func sessionHeader(stream id: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Int32 {
        guard let stream = self.streams.stream(id) else { return 0 }
        // RFC 9113 §6.5.2: each field counts its name, its value and 32 bytes. Past the advertised limit the
        // rest is dropped (libnghttp2 still decodes it, keeping HPACK in step) and the request refused.
        stream.headerListBytes += name.count + value.count + 32
        guard stream.headerListBytes <= self.maximumHeaderListSize else {
            stream.headerListTooLarge = true
            return 0
        }
        if name.first == UInt8(ascii: ":") {
            switch name.count {
            case 5 where name.isEqual(to: ":path"): stream.path = String(decoding: value, as: UTF8.self)
            case 7 where name.isEqual(to: ":method"): stream.method = String(decoding: value, as: UTF8.self)
            default: break  // :authority, :scheme (and :protocol) mean nothing here
            }
        } else {
            stream.fields.add(name: name, value: String(decoding: value, as: UTF8.self))
        }
        return 0
    }

    func sessionFrameReceived(stream id: Int32, isHeaders: Bool, endStream: Bool) {
        guard let stream = self.streams.stream(id), let scope = self.scope else { return }
        if isHeaders && stream.responder == nil {
            guard let head = stream.takeRequest() else {
                self.session?.reset(id, code: NGHTTP2_PROTOCOL_ERROR.rawValue)
                return
            }
            let responder = stream.attach(scope)
            let refusal =
                stream.headerListTooLarge
                ? Problem(
                    "request-header-fields-too-large", .requestHeaderFieldsTooLarge,
                    "the request's header list is over \(self.maximumHeaderListSize) bytes")
                : nil
            responder.receiveHead(head, refusal: refusal)
        }
        // Trailers, or the last DATA frame, end the request.
        if endStream { stream.responder?.receiveEnd() }
    }

    func sessionBody(stream id: Int32, bytes: UnsafeRawBufferPointer) {
        guard let stream = self.streams.stream(id), let context = self.context else { return }
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        stream.responder?.receiveBody(buffer)
    }

    func sessionStreamClosed(stream id: Int32, errorCode: UInt32) {
        guard let stream = self.streams.remove(id) else { return }
        stream.close()
        self.plane.metrics.streamClosed()
        if self.quiescing && self.finalGoAwaySent && self.streams.isEmpty { self.closeAfterWrites() }
    }

    func sessionPingAcknowledged() {
        guard self.quiescing, !self.finalGoAwaySent else { return }
        self.finalGoAwaySent = true
        self.session?.goAway()
        if self.streams.isEmpty { self.closeAfterWrites() } else { self.sendSoon(flushing: true) }
    }

    // MARK: Streams

    /// The send timeout for single streams: one holding unsent bytes without progress since `cutoff` (its
    /// window kept shut while the connection's other streams move) is reset with CANCEL; its held bytes come
    /// back as its pending writes fail.
    private func resetStalledStreams(before cutoff: NIODeadline) {
        var reset = false
        for stream in self.streams.all where stream.isStalled(since: cutoff) {
            self.budget.countTimeout()
            self.plane.logger.debug("send timeout: resetting a stream whose writes made no progress")
            stream.abort(code: NGHTTP2_CANCEL.rawValue)
            reset = true
        }
        if reset { self.sendSoon(flushing: true) }
    }

    private func closeAll() {
        for stream in self.streams.removeAll() {
            stream.close()
            self.plane.metrics.streamClosed()
        }
    }
}
