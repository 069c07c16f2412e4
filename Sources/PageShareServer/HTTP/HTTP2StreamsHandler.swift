import Logging
import NIOCore
import NIOHTTP2

/// One HTTP/2 connection's requests, at the frame level: each stream's request comes from its HEADERS (and
/// DATA) frames and is answered by a ``RequestResponder`` writing through the stream's
/// ``HTTP2StreamWriter``. Sits right after `NIOHTTP2Handler` (framing, HPACK, the stream state machine,
/// flow control, the DoS limits); idle connections are closed by ``IdleConnectionCloser``.
///
/// Streams get no channel of their own: a child channel, its pipeline and an HTTP/1 codec per request cost
/// more than the request itself for small ranges. What those (and swift-nio-http2's connection management
/// handler) gave is done here: a stream's state lives from its first HEADERS frame to its
/// `StreamClosedEvent` (end of both sides, RST_STREAM either way, or the connection's end); request bodies
/// are given back to the peer's flow-control windows as they arrive; the flushes of the responses to one
/// read burst are one flush; on shutdown (`ChannelShouldQuiesceEvent`) a GOAWAY names the last stream
/// that will be answered, and the connection closes once the streams in flight are done.
final class HTTP2StreamsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// Request body bytes received on the connection before a WINDOW_UPDATE gives them back: half the
    /// protocol's initial 64 KiB connection window.
    private static let connectionWindowUpdateBytes = 32 * 1024
    /// The same for one stream: a quarter of the 1 MiB stream window the server advertises.
    private static let streamWindowUpdateBytes = 256 * 1024

    private let plane: DataPlane
    private let peer: ConnectionPeer
    private var streams: [HTTP2StreamID: HTTP2StreamWriter] = [:]
    /// Set between `handlerAdded` and `handlerRemoved`: the streams write through it.
    private var context: ChannelHandlerContext?
    private var unacknowledgedInbound = 0
    /// Set while frames of one read burst are being handled: flushes wait for its end.
    private var reading = false
    private var flushPending = false
    /// The highest stream id opened: a GOAWAY names it as the last stream that will be answered.
    private var lastStreamID = HTTP2StreamID.rootStream
    private var quiescing = false
    private var closing = false

    /// Streams answered at once; further ones are refused with RST_STREAM(REFUSED_STREAM).
    private let maximumStreams: Int

    private let budget: SendBudget
    /// The connection's room for unsent response bytes, shared by its streams.
    private(set) var allowance: SendAllowance?

    init(plane: DataPlane, peer: ConnectionPeer, maximumStreams: Int, budget: SendBudget) {
        self.plane = plane
        self.peer = peer
        self.maximumStreams = maximumStreams
        self.budget = budget
    }

    /// `SETTINGS_MAX_CONCURRENT_STREAMS` for `limit` served streams: the limit plus an eighth (at least 16),
    /// so that the streams a client opens past the limit reach this handler, which refuses each on its own
    /// (REFUSED_STREAM: safe to retry), instead of swift-nio-http2 closing the connection; a client that
    /// goes past the advertised value too still gets the GOAWAY.
    static func advertisedStreams(serving limit: Int) -> Int { limit + max(16, limit / 8) }

    var eventLoop: any EventLoop { self.context!.eventLoop }
    var isChannelWritable: Bool { self.context?.channel.isWritable ?? false }

    func write(_ frame: HTTP2Frame, promise: EventLoopPromise<Void>?) {
        guard let context = self.context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(self.wrapOutboundOut(frame), promise: promise)
    }

    /// Flushes; while frames are being read, flushes are held back until the read burst ends, so that the
    /// responses to a burst of requests go out in one write.
    func flush() {
        if self.reading {
            self.flushPending = true
        } else {
            self.context?.flush()
        }
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let allowance = SendAllowance(budget: self.budget, closing: context, logger: self.plane.logger)
        allowance.onTick = { [weak self] cutoff in self?.resetStalledStreams(before: cutoff) }
        self.allowance = allowance
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.allowance?.close()
        self.closeAll()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.allowance?.close()
        self.closeAll()
        context.fireChannelInactive()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.reading = false
        if self.flushPending {
            self.flushPending = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.reading = true
        let frame = self.unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            if let stream = self.streams[frame.streamID] {
                // Trailers: they end the request; their fields mean nothing here.
                if headers.endStream { stream.responder?.receiveEnd() }
            } else {
                self.open(frame.streamID, headers: headers)
            }
        case .data(let data):
            self.receive(data, on: frame.streamID)
        default:
            break  // SETTINGS, PING, WINDOW_UPDATE, RST_STREAM, GOAWAY: NIOHTTP2Handler acts on them
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let closed = event as? StreamClosedEvent {
            if let stream = self.streams.removeValue(forKey: closed.streamID) {
                stream.close()
                self.plane.metrics.streamClosed()
            }
            if self.quiescing && self.streams.isEmpty { self.closeAfterWrites(context: context) }
        } else if event is ChannelShouldQuiesceEvent {
            self.quiesce(context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Graceful shutdown: a GOAWAY tells the client which streams will still be answered (those opened so
    /// far; later ones are refused by `NIOHTTP2Handler`), and the connection closes when they are done. The
    /// server closes what is left after its grace period.
    private func quiesce(context: ChannelHandlerContext) {
        guard !self.quiescing else { return }
        self.quiescing = true
        context.writeAndFlush(self.wrapOutboundOut(self.goAway), promise: nil)
        if self.streams.isEmpty { self.closeAfterWrites(context: context) }
    }

    /// Closes once everything written so far is on the wire (closing at once would drop the end of the last
    /// response if the socket is full): a final GOAWAY goes last, and its write completing closes.
    private func closeAfterWrites(context: ChannelHandlerContext) {
        guard !self.closing else { return }
        self.closing = true
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(self.wrapOutboundOut(self.goAway), promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    private var goAway: HTTP2Frame {
        HTTP2Frame(
            streamID: .rootStream,
            payload: .goAway(lastStreamID: self.lastStreamID, errorCode: .noError, opaqueData: nil))
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            for stream in self.streams.values { stream.responder?.writabilityChanged() }
        }
        context.fireChannelWritabilityChanged()
    }

    /// Protocol errors have been answered by `NIOHTTP2Handler` already: a RST_STREAM for a stream error
    /// (closing here would take every other stream of the connection down with it), a GOAWAY for a
    /// connection error (the client closes; one that does not is closed as idle). Tripping one of its DoS
    /// limits closes the connection at once, and so does anything else (I/O, TLS).
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.plane.logger.debug("connection error", metadata: ["error": "\(error)"])
        let base = (error as? NIOHTTP2Errors.StreamError)?.baseError ?? error
        if (error is NIOHTTP2Errors.StreamError || base is any NIOHTTP2Error) && !Self.isAbuse(base) { return }
        context.close(promise: nil)
    }

    private static func isAbuse(_ error: any Error) -> Bool {
        switch error {
        case is NIOHTTP2Errors.ExcessiveRSTFrames, is NIOHTTP2Errors.ExcessiveStreamErrors,
            is NIOHTTP2Errors.ExcessiveControlFrames, is NIOHTTP2Errors.ExcessiveContinuationFrames,
            is NIOHTTP2Errors.ExcessiveEmptyDataFrames, is NIOHTTP2Errors.ExcessiveNumberOfGlitches,
            is NIOHTTP2Errors.ExcessiveOutboundFrameBuffering, is NIOHTTP2Errors.ExcessivelyLargeHeaderBlock:
            true
        default: false
        }
    }

    // MARK: Streams

    private func open(_ id: HTTP2StreamID, headers: HTTP2Frame.FramePayload.Headers) {
        // After a GOAWAY no new stream is answered (NIOHTTP2Handler should not pass one on; this makes sure).
        guard !self.quiescing, self.streams.count < self.maximumStreams,
            let head = HTTP2Messages.request(from: headers.headers)
        else {
            let refused = self.quiescing || self.streams.count >= self.maximumStreams
            self.write(
                HTTP2Frame(streamID: id, payload: .rstStream(refused ? .refusedStream : .protocolError)), promise: nil)
            return self.flush()
        }
        let stream = HTTP2StreamWriter(id: id, connection: self)
        self.streams[id] = stream
        self.lastStreamID = max(self.lastStreamID, id)
        self.plane.metrics.streamOpened()
        let responder = stream.attach(plane: self.plane, peer: self.peer, eventLoop: self.eventLoop)
        responder.receiveHead(head)
        if headers.endStream { responder.receiveEnd() }
    }

    private func receive(_ data: HTTP2Frame.FramePayload.Data, on id: HTTP2StreamID) {
        guard case .byteBuffer(let bytes) = data.data else { return }
        let flowControlled = bytes.readableBytes + (data.paddingBytes.map { $0 + 1 } ?? 0)
        self.unacknowledgedInbound += flowControlled
        if self.unacknowledgedInbound >= Self.connectionWindowUpdateBytes {
            self.write(
                HTTP2Frame(
                    streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: self.unacknowledgedInbound)),
                promise: nil)
            self.unacknowledgedInbound = 0
        }
        guard let stream = self.streams[id] else { return }
        if !data.endStream {
            stream.unacknowledgedInbound += flowControlled
            if stream.unacknowledgedInbound >= Self.streamWindowUpdateBytes {
                self.write(
                    HTTP2Frame(streamID: id, payload: .windowUpdate(windowSizeIncrement: stream.unacknowledgedInbound)),
                    promise: nil)
                stream.unacknowledgedInbound = 0
            }
        }
        stream.responder?.receiveBody(bytes)
        if data.endStream { stream.responder?.receiveEnd() }
    }

    /// The send timeout for single streams: one holding unsent bytes without progress since `cutoff` (its
    /// window kept shut while the connection's other streams move) is reset with CANCEL; its held bytes come
    /// back as swift-nio-http2 fails their writes.
    private func resetStalledStreams(before cutoff: NIODeadline) {
        var reset = false
        for stream in self.streams.values where stream.isStalled(since: cutoff) {
            self.budget.countTimeout()
            self.plane.logger.debug("send timeout: resetting a stream whose writes made no progress")
            stream.abort(.cancel)
            reset = true
        }
        if reset { self.flush() }
    }

    private func closeAll() {
        let streams = self.streams
        self.streams = [:]
        for stream in streams.values {
            stream.close()
            self.plane.metrics.streamClosed()
        }
    }
}
