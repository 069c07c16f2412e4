import EROFS
import Logging
import NIOCore
import NIOHTTP1
import PageCache

/// Answers the requests of one HTTP/1.1 connection or one HTTP/2 stream: routing, metadata JSON, and file
/// bodies (a ``BodyStreamer`` each), written through a ``ResponseWriter``. Once the connection or stream is
/// gone (``detach()``: client gone, RST_STREAM) nothing more is written and the body stops.
final class RequestResponder: AllowanceWaiter, BodyStreamerOwner {
    let scope: ConnectionScope
    var plane: DataPlane { self.scope.plane }
    var peer: ConnectionPeer { self.scope.peer }
    var eventLoop: any EventLoop { self.scope.eventLoop }
    let allocator = ByteBufferAllocator()
    /// Where responses go; nil once the connection or stream is gone.
    private(set) var writer: (any ResponseWriter)?
    /// The connection's room for unsent bytes: bodies are produced only within it, whole responses charged.
    let allowance: SendAllowance?
    /// Set while waiting in the allowance's queue for room to answer the request.
    var isWaitingForAllowance = false
    /// The request being read or answered (kept until the next one arrives).
    var context: RequestContext?
    /// The request is complete and waits for room before it is answered.
    var waitingForRoom = false
    /// The body of the request being read (admin API JSON), up to the limit.
    var requestBody: [UInt8] = []
    var bodyTooLarge = false
    /// The file body being sent.
    var body: BodyStreamer<CachedFile>?

    init(scope: ConnectionScope, writer: any ResponseWriter) {
        self.scope = scope
        self.writer = writer
        self.allowance = writer.allowance
    }

    /// A request's head arrived: a new request starts.
    /// - Parameter refusal: a protocol-level problem found with the head (no Host, an unknown expectation):
    ///   the request is answered with it, whatever it asks for.
    func receiveHead(_ request: consuming Request, refusal: Problem? = nil) {
        self.context = RequestContext(request: request, refusal: refusal)
        self.requestBody = []
        self.bodyTooLarge = false
    }

    /// Part of the request's body arrived. Only the admin API reads bodies (small JSON); a body past the
    /// limit is dropped and refused.
    func receiveBody(_ part: ByteBuffer) {
        if self.requestBody.count + part.readableBytes <= self.plane.limits.maximumBodyBytes {
            self.requestBody.append(contentsOf: part.readableBytesView)
        } else {
            self.bodyTooLarge = true
        }
    }

    /// The request is complete: answer it.
    func receiveEnd() {
        guard self.context != nil else { return }
        if let allowance = self.allowance, !allowance.mayStart {
            // The connection holds its share of unsent bytes: the request waits its turn.
            self.waitingForRoom = true
            return allowance.wait(self)
        }
        self.respond()
    }

    /// The writer may take more body bytes again.
    func writabilityChanged() {
        self.body?.writabilityChanged()
    }

    /// The allowance has room again: answer the waiting request.
    func allowanceAvailable() {
        guard self.waitingForRoom else { return }
        if let allowance = self.allowance, !allowance.mayStart { return allowance.wait(self) }
        self.waitingForRoom = false
        self.respond()
    }

    /// The connection or stream is gone: nothing more is written, and the body stops.
    func detach() {
        self.writer = nil
        self.waitingForRoom = false
        self.allowance?.cancelWait(self)
        self.body?.stop()
        self.body = nil
    }

    // MARK: The file body

    func bodyFinished(sentBytes: Int) {
        self.body = nil
        self.context?.sentBytes += sentBytes
        self.finish()
    }

    /// A read failed: before the head went out the client gets the error status; after, the stream or
    /// connection is closed so that the client sees a truncated body, never wrong bytes.
    func bodyFailed(_ problem: Problem, headSent: Bool, sentBytes: Int) {
        self.body = nil
        self.plane.logger.warning(
            "file read failed", metadata: ["request": "\(self.loggedRequestID)", "error": "\(problem.detail)"])
        guard headSent else { return self.send(problem) }
        if let context = self.context {
            self.plane.metrics.record(
                route: context.endpoint, status: nil, sentBytes: context.sentBytes + sentBytes,
                started: context.started)
        }
        self.writer?.abort()
    }

    // MARK: Routing

    /// Answers the request of ``context``: refusals found with the head, then the route — operations
    /// endpoints without authentication, the rest after it.
    func respond() {
        guard let context = self.context else { return }
        if let refusal = context.refusal { return self.send(refusal) }
        let route = Route.parse(context.request.target)
        context.endpoint = route.endpoint
        if route.isOperations && !context.request.isGet && !context.request.isHead {
            return self.send(Problem.methodNotAllowed(context.request.method))
        }
        switch route {
        case .health, .ready: return self.respondToHealth(ready: route == .health || self.plane.isReady, route)
        case .metrics where self.plane.access.publicMetrics: return self.respondWithMetrics()
        default: break
        }
        if !self.plane.access.isOpen, context.request.fields.authorizationCount > 1 {
            return self.send(Problem.badRequest("more than one Authorization field"))
        }
        let caller: Caller
        switch self.plane.access.authenticate(
            authorization: self.plane.access.isOpen ? nil : context.request.fields.authorization, peer: self.peer,
            metrics: self.plane.metrics, logger: self.plane.logger)
        {
        case .success(let authenticated): caller = authenticated
        case .failure(let problem): return self.send(problem)
        }
        switch route {
        case .metrics:
            guard caller.isAdmin else { return self.refuse(.forbidden("/metrics needs the admin role")) }
            return self.respondWithMetrics()
        case .admin(let segments): return self.respondToAdmin(segments, caller: caller)
        default: break
        }
        guard context.request.isGet || context.request.isHead else {
            return self.send(Problem.methodNotAllowed(context.request.method))
        }
        guard case .data(let target) = route else {
            // Only a refused target is left here; every route is answered, whatever it is.
            let failure = if case .refused(let failure) = route { failure } else { RequestTarget.Failure.noRoute }
            return self.send(Problem(for: failure, target: nil))
        }
        // A tenant sees only its domains' images; the others answer exactly like a missing image. The check
        // is made where the image is looked up (once per request).
        // A local function: passed where a non-escaping closure is taken, it needs no context on the heap.
        func visible(_ domain: TrustDomain) -> Bool { caller.canRead(domain: domain.name) }
        do {
            switch target.resource {
            case .files: try self.respondWithFile(target, visible: visible)
            case .stat:
                try self.respondWithStat(target, image: try self.plane.cache.image(id: target.image, visible: visible))
            case .dirs:
                try self.respondWithListing(
                    target, image: try self.plane.cache.image(id: target.image, visible: visible))
            }
        } catch {
            self.send(Problem(for: error, target: target))
        }
    }

    // MARK: Responses

    func finish() {
        guard let context = self.context else { return }
        self.plane.metrics.record(
            route: context.endpoint, status: context.status, sentBytes: context.sentBytes, started: context.started)
        self.plane.logger.debug(
            "request",
            metadata: [
                "request": "\(self.loggedRequestID)", "route": "\(context.endpoint.label)",
                "status": "\(context.status?.code ?? 0)", "bytes": "\(context.sentBytes)",
                "micros": "\((NIODeadline.now() - context.started).nanoseconds / 1000)",
            ])
        self.writer?.writeEnd(keepAlive: context.request.keepAlive)
    }

    /// The client's `x-request-id`, or a random one made when something is first logged about the request.
    var loggedRequestID: String {
        if let id = self.context?.requestID { return id }
        let id = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        self.context?.requestID = id
        return id
    }

    func sendJSON(_ body: [UInt8]) {
        var response = ResponseHead(status: .ok, allocator: self.allocator)
        response.add("content-type", "application/json")
        self.sendWhole(body, head: response)
    }

    /// Sends `problem` as problem+json, with its own fields and those of `fields` (a file's validators).
    func send(_ problem: Problem, fields: ResponseHead? = nil) {
        var response = fields ?? ResponseHead(status: problem.responseStatus, allocator: self.allocator)
        response.answer(problem)
        self.sendWhole(problem.encoded(), head: response)
    }

    /// Sends a whole response: `response` (status and fields) with the date, length and connection fields
    /// added, then `body`.
    func sendWhole(_ body: [UInt8], head response: consuming ResponseHead) {
        guard let context = self.context else { return }
        let status = response.status
        response.add("date", HTTPDate.now())
        // RFC 9110 §8.6: no Content-Length on a 204.
        if status != .noContent { response.add("content-length", decimal: UInt64(body.count)) }
        if !context.request.keepAlive { response.add("connection", "close") }
        self.writer?.writeHead(response)
        context.status = status
        if !context.request.isHead, !body.isEmpty {
            context.sentBytes += body.count
            self.writeCharged(self.allocator.buffer(bytes: body))
        }
        self.finish()
    }

    /// Writes a whole response's body, charged to the allowance until its write completes.
    func writeCharged(_ bytes: ByteBuffer) {
        guard let writer = self.writer else { return }
        guard let allowance = self.allowance else { return writer.writeBody(bytes, notice: nil) }
        let count = bytes.readableBytes
        allowance.charge(count)
        writer.writeBody(bytes, notice: WriteNotice(allowance, bytes: count))
    }
}
