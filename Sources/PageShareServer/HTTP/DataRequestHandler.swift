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
/// buffered data. Resident pages are copied straight into the outgoing buffer on the event loop; a chunk
/// with a missing page is filled off the event loop and the stream resumes when it is ready. Closing the
/// channel (client gone, RST_STREAM) stops the stream at the next chunk.
final class DataRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let plane: DataPlane
    private let peer: ConnectionPeer
    private var request: HTTPRequestHead?
    /// The body of the request being read (admin API JSON), up to the limit.
    private var requestBody: [UInt8] = []
    private var bodyTooLarge = false
    /// The request being answered, for its metrics.
    private var started = NIODeadline.now()
    private var route = ServerMetrics.Route.other
    private var status: HTTPResponseStatus?
    private var sentBytes = 0
    private var requestID: String?
    private var stream: BodyStream?
    /// Set while ``pump(context:)`` runs: a write can fire `channelWritabilityChanged` synchronously, which
    /// must not start a second pump over the same stream.
    private var pumping = false
    /// Set when a writability change arrived during a pump: the pump goes round once more.
    private var pumpAgain = false

    /// A file body in progress (a class: the pump, fills and channel events share one state).
    private final class BodyStream {
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

    private func respond(context: ChannelHandlerContext, to head: HTTPRequestHead) {
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
        switch self.authenticate(head) {
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
            switch error {
            case .noRoute: return self.send(Problem.noRoute(), context: context, for: head)
            case .badRequest(let reason): return self.send(Problem.badRequest(reason), context: context, for: head)
            }
        }
        switch target.resource {
        case .files: self.route = .files
        case .stat: self.route = .stat
        case .dirs: self.route = .dirs
        }
        do {
            // A tenant sees only its domains' images; the others answer exactly like a missing image.
            if case .tenant = caller {
                guard let domain = try? self.plane.cache.domain(ofImage: target.image),
                    caller.canRead(domain: domain.name)
                else { throw Problem.unknownImage(target.image) }
            }
            switch target.resource {
            case .files: try self.respondWithFile(target, context: context, for: head)
            case .stat:
                try self.respondWithStat(
                    target, image: try self.plane.cache.image(id: target.image), context: context, for: head)
            case .dirs:
                try self.respondWithListing(
                    target, image: try self.plane.cache.image(id: target.image), context: context, for: head)
            }
        } catch {
            self.send(self.problem(for: error, target: target), context: context, for: head)
        }
    }

    /// `/metrics`: the cache's series are published, then the exposition is rendered.
    private func respondWithMetrics(
        _ exposition: @Sendable () -> [UInt8], context: ChannelHandlerContext, for head: HTTPRequestHead
    ) {
        self.route = .metrics
        self.plane.cache.publishMetrics(to: self.plane.metricsFactory, perImage: self.plane.perImageMetrics)
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; version=0.0.4; charset=utf-8")
        self.sendWhole(exposition(), status: .ok, headers: headers, context: context, for: head)
    }

    /// `/healthz` (alive) and `/readyz` (state restored, listeners up): no authentication, for probes.
    private func respondToHealth(_ path: Substring, context: ChannelHandlerContext, for head: HTTPRequestHead) {
        self.route = .health
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        let ready = path == "/healthz" || self.plane.isReady
        self.sendWhole(
            Array((path == "/healthz" ? "ok\n" : ready ? "ready\n" : "starting\n").utf8),
            status: ready ? .ok : .serviceUnavailable, headers: headers, context: context, for: head)
    }

    /// The caller of `head`, or the problem refusing it (401, 429). Failures count towards the client's
    /// limit; a limited client is refused before its token is even looked at.
    private func authenticate(_ head: HTTPRequestHead) -> Result<Caller, Problem> {
        let access = self.plane.access
        if access.isOpen { return .success(.admin(name: "open")) }
        if let seconds = access.limiter.retryAfter(client: self.peer.address) {
            self.plane.metrics.authFailed(.rateLimited)
            return .failure(.tooManyFailures(retryAfter: seconds))
        }
        let authorization = head.headers.first(name: "authorization")
        if let caller = access.caller(authorization: authorization, peerUID: self.peer.uid) {
            return .success(caller)
        }
        let reason: ServerMetrics.AuthFailure = authorization == nil ? .missing : .invalid
        self.plane.metrics.authFailed(reason)
        // One warning when a client reaches the limit, not one line per failure (a guesser would flood the log).
        if access.limiter.recordFailure(client: self.peer.address) {
            self.plane.logger.warning(
                "too many failed authentications: client refused for a while",
                metadata: ["client": "\(self.peer.address)", "reason": "\(reason.rawValue)"])
        } else {
            self.plane.logger.debug(
                "authentication failed", metadata: ["client": "\(self.peer.address)", "reason": "\(reason.rawValue)"])
        }
        return .failure(
            .unauthorized(authorization == nil ? "a bearer token is required" : "the bearer token is not valid"))
    }

    /// Sends a 403 and counts it.
    private func refuse(_ problem: Problem, context: ChannelHandlerContext, for head: HTTPRequestHead) {
        self.plane.metrics.authFailed(.forbidden)
        self.send(problem, context: context, for: head)
    }

    /// `/v1/admin/...`: admin role only; answered by the ``AdminAPI`` off the event loop.
    private func respondToAdmin(_ head: HTTPRequestHead, caller: Caller, context: ChannelHandlerContext) {
        self.route = .admin
        guard let admin = self.plane.admin else { return self.send(Problem.noRoute(), context: context, for: head) }
        guard caller.isAdmin else {
            return self.refuse(.forbidden("the admin API needs the admin role"), context: context, for: head)
        }
        guard !self.bodyTooLarge else {
            return self.send(
                Problem(
                    "body-too-large", .payloadTooLarge,
                    "request bodies are limited to \(self.plane.limits.maximumBodyBytes) bytes"),
                context: context, for: head)
        }
        let segments: [String]
        do {
            segments = try RequestTarget.adminSegments(head.uri)
        } catch {
            switch error {
            case .noRoute: return self.send(Problem.noRoute(), context: context, for: head)
            case .badRequest(let reason): return self.send(Problem.badRequest(reason), context: context, for: head)
            }
        }
        let (method, body) = (head.method, self.requestBody)
        self.requestBody = []
        self.plane.logger.info(
            "admin request",
            metadata: [
                "request": "\(self.loggedRequestID)", "caller": "\(caller.name)", "method": "\(method)",
                "path": "\(segments.joined(separator: "/"))",
            ])
        let promise = context.eventLoop.makePromise(of: AdminAPI.Reply.self)
        promise.completeWithTask { try await admin.handle(method: method, segments: segments, body: body) }
        promise.futureResult.assumeIsolated().whenComplete { result in
            guard context.channel.isActive else { return }
            switch result {
            case .success(let reply):
                var headers = HTTPHeaders()
                if let location = reply.location { headers.add(name: "location", value: location) }
                if reply.body != nil { headers.add(name: "content-type", value: "application/json") }
                self.sendWhole(reply.body ?? [], status: reply.status, headers: headers, context: context, for: head)
            case .failure(let error):
                self.send(
                    error as? Problem ?? Problem("internal-error", .internalServerError, "internal error"),
                    context: context, for: head)
            }
        }
    }

    private func respondWithStat(
        _ target: RequestTarget, image: Image, context: ChannelHandlerContext, for head: HTTPRequestHead
    ) throws {
        let inode = try image.resolve(target.path, followingFinalSymlink: false)
        let description = try FileDescription(
            path: target.path, inode: inode, image: image, includeXattrs: true,
            includeExtents: target.queryValue("extents") == "1")
        self.sendJSON(try JSONBody.encode(description), context: context, for: head)
    }

    private func respondWithListing(
        _ target: RequestTarget, image: Image, context: ChannelHandlerContext, for head: HTTPRequestHead
    ) throws {
        let limits = self.plane.limits
        var limit = limits.defaultListingLimit
        if let text = target.queryValue("limit") {
            guard let value = Int(text), value > 0, value <= limits.maximumListingLimit else {
                throw Problem.badRequest("limit must be 1-\(limits.maximumListingLimit)")
            }
            limit = value
        }
        let directory = try image.resolve(target.path)
        guard directory.fileType == .directory else {
            throw Problem("not-a-directory", .notFound, "\(target.path) is not a directory; read it at files/")
        }
        let listing = try MetadataResponses.listing(
            image: image, directory: directory, path: target.path, after: target.queryValue("after"), limit: limit)
        self.sendJSON(try JSONBody.encode(listing), context: context, for: head)
    }

    private func respondWithFile(
        _ target: RequestTarget, context: ChannelHandlerContext, for head: HTTPRequestHead
    ) throws {
        // One lookup of the image for path, inode and open file: the registry lock is taken once.
        let resolved = try self.plane.cache.resolveForReading(imageID: target.image, path: target.path)
        let (image, inode) = (resolved.image, resolved.inode)
        switch inode.fileType {
        case .regular: break
        case .directory:
            throw Problem(
                "is-a-directory", .notFound,
                "\(target.path) is a directory; list it at /v1/images/\(target.image)/dirs\(target.path)")
        default:
            throw Problem("not-a-regular-file", .notFound, "\(target.path) is a \(inode.fileType.rawValue), not a file")
        }
        if let file = resolved.file {
            return self.startFile(file, inode: inode, image: image, context: context, for: head)
        }
        // The first open of a file in digest (or verify) mode hashes it: on a fill thread, not the event loop.
        let cache = self.plane.cache
        let imageID = target.image
        let promise = context.eventLoop.makePromise(of: CachedFile.self)
        Task(executorPreference: cache.fillExecutor) {
            promise.completeWith(Result { try cache.open(imageID: imageID, inode: inode) })
        }
        promise.futureResult.assumeIsolated().whenComplete { result in
            guard context.channel.isActive else { return }
            switch result {
            case .success(let file): self.startFile(file, inode: inode, image: image, context: context, for: head)
            case .failure(let error):
                self.send(self.problem(for: error, target: target), context: context, for: head)
            }
        }
    }

    private func startFile(
        _ file: CachedFile, inode: Inode, image: Image, context: ChannelHandlerContext, for head: HTTPRequestHead
    ) {
        let plan = FileResponsePlan.make(
            file: file, inode: inode, image: image, request: head, maximumRanges: self.plane.limits.maximumRanges,
            allocator: context.channel.allocator)
        if let problem = plan.problem { return self.send(problem, context: context, for: head) }
        var headers = plan.headers
        // A 304 carries no Content-Length: RFC 9110 §8.6 allows one only if it equals the 200's.
        if plan.status != .notModified { headers.add(name: "content-length", value: String(plan.body.length)) }
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "connection", value: "close") }
        let responseHead = HTTPResponseHead(version: head.version, status: plan.status, headers: headers)
        self.status = plan.status
        guard head.method == .GET, plan.body.length > 0 else {
            context.write(self.wrapOutboundOut(.head(responseHead)), promise: nil)
            return self.finish(context: context, keepAlive: keepAlive)
        }
        self.stream = BodyStream(file: file, responseHead: responseHead, body: plan.body, request: head)
        self.pump(context: context)
    }

    // MARK: Streaming

    /// Sends body chunks while the channel is writable; stops at a chunk with a missing page (and fills it
    /// off the event loop) or when the body is done.
    private func pump(context: ChannelHandlerContext) {
        guard !self.pumping else {
            self.pumpAgain = true
            return
        }
        self.pumping = true
        defer { self.pumping = false }
        repeat {
            self.pumpAgain = false
            self.pumpOnce(context: context)
        } while self.pumpAgain
    }

    private func pumpOnce(context: ChannelHandlerContext) {
        guard let stream = self.stream, !stream.fillInFlight else { return }
        let chunkBytes = self.plane.limits.chunkBytes
        while stream.segmentIndex < stream.body.segments.count {
            // Stop when the channel closed under a write (channelInactive dropped the stream) or is full.
            guard self.stream === stream, context.channel.isWritable || !stream.headSent else { break }
            switch stream.body.segments[stream.segmentIndex] {
            case .bytes(let bytes):
                stream.segmentIndex += 1
                self.sentBytes += bytes.readableBytes
                if stream.headSent {
                    context.write(self.wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil)
                } else {
                    stream.held.append(bytes)
                }
            case .file(let offset, let count):
                let position = offset + stream.segmentDone
                let wanted = Int(min(UInt64(chunkBytes), count - stream.segmentDone))
                var buffer = context.channel.allocator.buffer(capacity: wanted)
                let file = stream.file
                let copied = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: wanted) { memory in
                    file.readResident(at: position, into: UnsafeMutableRawBufferPointer(rebasing: memory[0..<wanted]))
                }
                if copied > 0 { self.emit(buffer, stream: stream, context: context) }
                if copied < wanted {
                    stream.fillInFlight = true
                    self.fill(file, at: position + UInt64(copied), count: wanted - copied, context: context)
                    context.flush()
                    return
                }
            }
        }
        guard self.stream === stream else { return }
        if stream.segmentIndex == stream.body.segments.count {
            self.stream = nil
            self.finish(context: context, keepAlive: stream.request.isKeepAlive)
        } else {
            context.flush()
        }
    }

    /// Writes file bytes (after the held head and literal bytes) and advances the stream. The state moves
    /// before the writes, which may re-enter the handler.
    private func emit(_ buffer: ByteBuffer, stream: BodyStream, context: ChannelHandlerContext) {
        let sendHead = !stream.headSent
        let held = stream.held
        stream.headSent = true
        stream.held = []
        stream.segmentDone += UInt64(buffer.readableBytes)
        self.sentBytes += buffer.readableBytes
        if case .file(_, let count) = stream.body.segments[stream.segmentIndex], stream.segmentDone == count {
            stream.segmentIndex += 1
            stream.segmentDone = 0
        }
        if sendHead {
            context.write(self.wrapOutboundOut(.head(stream.responseHead)), promise: nil)
            for bytes in held { context.write(self.wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil) }
        }
        context.write(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    }

    /// Reads `count` bytes at `offset` through the cache off the event loop, then resumes the stream.
    private func fill(_ file: CachedFile, at offset: UInt64, count: Int, context: ChannelHandlerContext) {
        let promise = context.eventLoop.makePromise(of: ByteBuffer.self)
        let allocator = context.channel.allocator
        Task(executorPreference: self.plane.cache.fillExecutor) {
            do {
                let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
                defer { scratch.deallocate() }
                let read = try await file.read(at: offset, into: scratch)
                var buffer = allocator.buffer(capacity: read)
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: scratch[0..<read]))
                promise.succeed(buffer)
            } catch {
                promise.fail(error)
            }
        }
        promise.futureResult.assumeIsolated().whenComplete { result in
            guard let stream = self.stream else { return }  // the channel closed meanwhile
            stream.fillInFlight = false
            switch result {
            case .success(let buffer) where buffer.readableBytes == count:
                self.emit(buffer, stream: stream, context: context)
                self.pump(context: context)
            case .success:
                self.abort(stream, Problem.imageReadError("the file ended early"), context: context)
            case .failure(let error):
                self.abort(stream, self.problem(for: error, target: nil), context: context)
            }
        }
    }

    /// A read failed: before the head went out the client gets the error status; after, the stream or
    /// connection is closed so that the client sees a truncated body, never wrong bytes.
    private func abort(_ stream: BodyStream, _ problem: Problem, context: ChannelHandlerContext) {
        self.stream = nil
        self.plane.logger.warning(
            "file read failed", metadata: ["request": "\(self.loggedRequestID)", "error": "\(problem.detail)"])
        if stream.headSent {
            self.plane.metrics.record(route: self.route, status: nil, sentBytes: self.sentBytes, started: self.started)
            context.close(promise: nil)
        } else {
            self.send(problem, context: context, for: stream.request)
        }
    }

    private func finish(context: ChannelHandlerContext, keepAlive: Bool) {
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
    private var loggedRequestID: String {
        if let id = self.requestID { return id }
        let id = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        self.requestID = id
        return id
    }

    // MARK: Simple responses

    private func sendJSON(_ body: [UInt8], context: ChannelHandlerContext, for head: HTTPRequestHead) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        self.sendWhole(body, status: .ok, headers: headers, context: context, for: head)
    }

    private func send(_ problem: Problem, context: ChannelHandlerContext, for head: HTTPRequestHead) {
        var headers = problem.headers
        headers.add(name: "content-type", value: "application/problem+json")
        self.sendWhole(
            problem.encoded(), status: problem.responseStatus, headers: headers, context: context, for: head)
    }

    private func sendWhole(
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

    /// The problem response for an error from routing, the image or the cache.
    private func problem(for error: any Error, target: RequestTarget?) -> Problem {
        if let problem = error as? Problem { return problem }
        if let error = error as? PageCacheError {
            switch error.code {
            case .unknownImage: return Problem.unknownImage(target?.image ?? "")
            case .notARegularFile: return Problem("not-a-regular-file", .notFound, error.message)
            default:
                if let cause = error.cause as? EROFSError { return self.problem(for: cause, target: target) }
                return Problem.imageReadError(error.message)
            }
        }
        if let error = error as? EROFSError {
            switch error.code {
            case .notFound: return Problem.notFound("\(target?.path ?? "path") does not exist in the image")
            case .notADirectory:
                return Problem.notFound("a component of \(target?.path ?? "the path") is not a directory")
            case .tooManySymlinks: return Problem("too-many-symlinks", .notFound, error.message)
            case .invalidArgument: return Problem.badRequest(error.message)
            default: return Problem.imageReadError("the image cannot be read here: \(error.message)")
            }
        }
        return Problem.imageReadError("internal error")
    }
}
