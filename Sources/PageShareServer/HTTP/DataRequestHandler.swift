import EROFS
import Logging
import NIOCore
import NIOHTTP1
import PageCache

/// Serves data-API requests on one HTTP/1.1 connection or one HTTP/2 stream (behind
/// `HTTP2FramePayloadToHTTP1ServerCodec`): routing, metadata JSON, and file bodies streamed from the shared
/// page cache.
///
/// A body is sent chunk by chunk while the channel is writable (HTTP/2 flow control and the socket's
/// watermarks both show as writability), so a reader that stops reading holds at most one window of
/// buffered data. Resident pages are lent by the cache or copied (``PageWrites``) on the event loop; a chunk
/// with a missing page is filled off the event loop and the stream resumes when it is ready. Closing the
/// channel (client gone, RST_STREAM) stops the stream at the next chunk.
final class DataRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let plane: DataPlane
    let peer: ConnectionPeer
    var request: HTTPRequestHead?
    /// The body of the request being read (admin API JSON), up to the limit.
    var requestBody: [UInt8] = []
    var bodyTooLarge = false
    /// The request being answered, for its metrics.
    var started = NIODeadline.now()
    var route = ServerMetrics.Route.other
    var status: HTTPResponseStatus?
    var sentBytes = 0
    var requestID: String?
    var stream: BodyStream?
    /// Set while ``pump(context:)`` runs: a write can fire `channelWritabilityChanged` synchronously, which
    /// must not start a second pump over the same stream.
    var pumping = false
    /// Set when a writability change arrived during a pump: the pump goes round once more.
    var pumpAgain = false

    /// A file body in progress (a class: the pump, fills and channel events share one state).
    final class BodyStream {
        var file: CachedFile
        var responseHead: HTTPResponseHead
        var headSent = false
        var body: ResponseBody
        var segmentIndex = 0
        /// Bytes of the current segment already sent.
        var segmentDone: UInt64 = 0
        /// Literal bytes waiting for the head, which is held until the first file bytes are read so that a
        /// failing first read still gets a proper error status.
        var held: [ByteBuffer] = []
        var fillInFlight = false
        /// The request answered (its version, keep-alive and method decide the error response, if any).
        let request: HTTPRequestHead

        init(file: CachedFile, responseHead: HTTPResponseHead, body: ResponseBody, request: HTTPRequestHead) {
            self.file = file
            self.responseHead = responseHead
            self.body = body
            self.request = request
        }
    }

    init(plane: DataPlane, peer: ConnectionPeer) {
        self.plane = plane
        self.peer = peer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.request = head
            self.started = .now()
            self.route = .other
            self.status = nil
            self.sentBytes = 0
            self.requestBody = []
            self.bodyTooLarge = false
            self.requestID = head.headers.first(name: "x-request-id").map { String($0.prefix(64)) }
        case .body(let part):
            // Only the admin API reads bodies (small JSON); a body past the limit is dropped and refused.
            if self.requestBody.count + part.readableBytes <= self.plane.limits.maximumBodyBytes {
                self.requestBody.append(contentsOf: part.readableBytesView)
            } else {
                self.bodyTooLarge = true
            }
        case .end:
            guard let head = self.request else { return }
            self.request = nil
            self.respond(context: context, to: head)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.pump(context: context) }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.plane.logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.stream = nil  // a fill in flight finds no stream and drops its chunk
        context.fireChannelInactive()
    }

    // MARK: Routing

    func respond(context: ChannelHandlerContext, to head: HTTPRequestHead) {
        let path = head.uri[..<(head.uri.firstIndex(of: "?") ?? head.uri.endIndex)]
        let isOperations = path == "/healthz" || path == "/readyz" || path == "/metrics"
        if isOperations && head.method != .GET && head.method != .HEAD {
            return self.send(Problem.methodNotAllowed(head.method), context: context, for: head)
        }
        if path == "/healthz" || path == "/readyz" { return self.respondToHealth(path, context: context, for: head) }
        let metrics = path == "/metrics" ? self.plane.exposition : nil
        if let metrics, self.plane.access.publicMetrics {
            return self.respondWithMetrics(metrics, context: context, for: head)
        }
        let caller: Caller
        switch self.plane.access.authenticate(
            authorization: head.headers.first(name: "authorization"), peer: self.peer, metrics: self.plane.metrics,
            logger: self.plane.logger)
        {
        case .success(let authenticated): caller = authenticated
        case .failure(let problem): return self.send(problem, context: context, for: head)
        }
        if let metrics {
            guard caller.isAdmin else {
                self.route = .metrics
                return self.refuse(.forbidden("/metrics needs the admin role"), context: context, for: head)
            }
            return self.respondWithMetrics(metrics, context: context, for: head)
        }
        if path == "/v1/admin" || path.hasPrefix("/v1/admin/") {
            return self.respondToAdmin(head, caller: caller, context: context)
        }
        guard head.method == .GET || head.method == .HEAD else {
            return self.send(Problem.methodNotAllowed(head.method), context: context, for: head)
        }
        let target: RequestTarget
        do {
            target = try RequestTarget.parse(head.uri)
        } catch {
            return self.send(Problem(for: error, target: nil), context: context, for: head)
        }
        switch target.resource {
        case .files: self.route = .files
        case .stat: self.route = .stat
        case .dirs: self.route = .dirs
        }
        // A tenant sees only its domains' images; the others answer exactly like a missing image. The check
        // is made where the image is looked up (once per request).
        let visible = { (domain: TrustDomain) in caller.canRead(domain: domain.name) }
        do {
            switch target.resource {
            case .files: try self.respondWithFile(target, visible: visible, context: context, for: head)
            case .stat:
                try self.respondWithStat(
                    target, image: try self.plane.cache.image(id: target.image, visible: visible), context: context,
                    for: head)
            case .dirs:
                try self.respondWithListing(
                    target, image: try self.plane.cache.image(id: target.image, visible: visible), context: context,
                    for: head)
            }
        } catch {
            self.send(Problem(for: error, target: target), context: context, for: head)
        }
    }

    // MARK: Responses

    func finish(context: ChannelHandlerContext, keepAlive: Bool) {
        self.plane.metrics.record(
            route: self.route, status: self.status, sentBytes: self.sentBytes, started: self.started)
        self.plane.logger.debug(
            "request",
            metadata: [
                "request": "\(self.loggedRequestID)", "route": "\(self.route.label)",
                "status": "\(self.status?.code ?? 0)", "bytes": "\(self.sentBytes)",
                "micros": "\((NIODeadline.now() - self.started).nanoseconds / 1000)",
            ])
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: done)
        if !keepAlive { done.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
    }

    /// The client's `x-request-id`, or a random one made when something is first logged about the request.
    var loggedRequestID: String {
        if let id = self.requestID { return id }
        let id = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        self.requestID = id
        return id
    }

    func sendJSON(_ body: [UInt8], context: ChannelHandlerContext, for head: HTTPRequestHead) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        self.sendWhole(body, status: .ok, headers: headers, context: context, for: head)
    }

    func send(_ problem: Problem, context: ChannelHandlerContext, for head: HTTPRequestHead) {
        var headers = problem.headers
        headers.add(name: "content-type", value: "application/problem+json")
        self.sendWhole(
            problem.encoded(), status: problem.responseStatus, headers: headers, context: context, for: head)
    }

    func sendWhole(
        _ body: [UInt8], status: HTTPResponseStatus, headers: HTTPHeaders, context: ChannelHandlerContext,
        for head: HTTPRequestHead
    ) {
        var headers = headers
        headers.add(name: "date", value: HTTPDate.now())
        // RFC 9110 §8.6: no Content-Length on a 204.
        if status != .noContent { headers.add(name: "content-length", value: String(body.count)) }
        if !head.isKeepAlive { headers.add(name: "connection", value: "close") }
        context.write(
            self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil)
        self.status = status
        if head.method != .HEAD {
            self.sentBytes += body.count
            context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        }
        self.finish(context: context, keepAlive: head.isKeepAlive)
    }
}
