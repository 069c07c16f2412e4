import EROFS
import Logging
import NIOCore
import NIOHTTP1
import PageCache

/// Answers the requests of one HTTP/1.1 connection or one HTTP/2 stream: routing, metadata JSON, and file
/// bodies streamed from the shared page cache, written through a ``ResponseWriter``.
///
/// A body is sent chunk by chunk while the writer is writable (HTTP/2 flow control, the stream's and the
/// socket's buffers), so a reader that stops reading holds at most about one window of buffered data.
/// Resident pages are lent by the cache or copied (``PageWrites``) on the event loop; a chunk with a missing
/// page is filled off the event loop and the stream resumes when it is ready. Once the connection or stream
/// is gone (``detach()``: client gone, RST_STREAM) nothing more is written and the body stops.
final class RequestResponder {
    let plane: DataPlane
    let peer: ConnectionPeer
    let eventLoop: any EventLoop
    let allocator = ByteBufferAllocator()
    /// Where responses go; nil once the connection or stream is gone.
    private(set) var writer: (any ResponseWriter)?
    /// The connection's room for unsent bytes: bodies are produced only within it.
    let allowance: SendAllowance?
    /// Set while waiting in the allowance's queue (for a request to answer or a body chunk to produce).
    var isWaitingForAllowance = false
    /// A complete request waiting for room before it is answered.
    var waitingHead: HTTPRequestHead?
    /// Body bytes taken from the allowance and not yet given back (produced or not, written or not).
    var bodyBytesHeld = 0
    /// Set when the body waits for its own writes to complete (``SendAllowance/isStreamPartHeld(_:)``).
    var heldBackByOwnBytes = false
    var request: HTTPRequestHead?
    /// The problem the request is answered with whatever it asks for, found with its head (HTTP/1.1).
    var refusal: Problem?
    /// The body of the request being read (admin API JSON), up to the limit.
    var requestBody: [UInt8] = []
    var bodyTooLarge = false
    /// The request being answered, for its metrics.
    var started = NIODeadline.now()
    var route = ServerMetrics.Route.other
    var status: HTTPResponseStatus?
    var sentBytes = 0
    var requestID: String?
    /// Whether the connection stays open after this response: HTTP/2 always (its streams end, not the
    /// connection), HTTP/1.1 unless the request said `Connection: close` (or was HTTP/1.0 without keep-alive).
    var keepAlive = true
    var stream: BodyStream?
    /// Set while ``pump()`` runs: a write can report a writability change synchronously, which must not
    /// start a second pump over the same stream.
    var pumping = false
    /// Set when a writability change arrived during a pump: the pump goes round once more.
    var pumpAgain = false

    /// A file body in progress (a class: the pump, fills and writability changes share one state).
    final class BodyStream {
        var file: CachedFile
        var responseHead: ResponseHead
        var headSent = false
        var body: ResponseBody
        var segmentIndex = 0
        /// Bytes of the current segment already sent.
        var segmentDone: UInt64 = 0
        /// Literal bytes waiting for the head, which is held until the first file bytes are read so that a
        /// failing first read still gets a proper error status.
        var held: [ByteBuffer] = []
        var fillInFlight = false
        /// Bytes taken from the allowance and not yet produced.
        var granted = 0
        /// The request answered (its version, keep-alive and method decide the error response, if any).
        let request: HTTPRequestHead

        init(file: CachedFile, responseHead: ResponseHead, body: ResponseBody, request: HTTPRequestHead) {
            self.file = file
            self.responseHead = responseHead
            self.body = body
            self.request = request
        }
    }

    init(plane: DataPlane, peer: ConnectionPeer, eventLoop: any EventLoop, writer: any ResponseWriter) {
        self.plane = plane
        self.peer = peer
        self.eventLoop = eventLoop
        self.writer = writer
        self.allowance = writer.allowance
    }

    /// A request's head arrived: a new request starts.
    /// - Parameter refusal: a protocol-level problem found with the head (no Host, an unknown expectation):
    ///   the request is answered with it, whatever it asks for.
    func receiveHead(_ head: HTTPRequestHead, refusal: Problem? = nil) {
        self.request = head
        self.refusal = refusal
        self.started = .now()
        self.route = .other
        self.status = nil
        self.sentBytes = 0
        self.requestBody = []
        self.bodyTooLarge = false
        self.requestID = head.headers.first(name: "x-request-id").map { String($0.prefix(64)) }
        self.keepAlive = head.version.major >= 2 || head.isKeepAlive
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
        guard let head = self.request else { return }
        self.request = nil
        if let allowance = self.allowance, !allowance.mayStart {
            // The connection holds its share of unsent bytes: the request waits its turn.
            self.waitingHead = head
            return allowance.wait(self)
        }
        self.respond(to: head)
    }

    /// The writer may take more body bytes again.
    func writabilityChanged() {
        if self.writer?.isWritable == true, !self.isWaitingForAllowance { self.pump() }
    }

    /// The allowance has room again: answer the waiting request, or go on with the body.
    func allowanceAvailable() {
        guard let head = self.waitingHead else { return self.pump() }
        if let allowance = self.allowance, !allowance.mayStart { return allowance.wait(self) }
        self.waitingHead = nil
        self.respond(to: head)
    }

    /// The connection or stream is gone: nothing more is written, and a fill in flight drops its chunk.
    func detach() {
        self.writer = nil
        self.waitingHead = nil
        self.allowance?.cancelWait(self)
        self.dropStream()
    }

    /// The body stops: room taken for bytes it will not produce goes back.
    func dropStream() {
        if let stream = self.stream, stream.granted > 0 {
            self.allowance?.release(stream.granted, written: false)
            self.bodyBytesHeld -= stream.granted
            stream.granted = 0
        }
        self.heldBackByOwnBytes = false
        self.stream = nil
    }

    // MARK: Routing

    func respond(to head: HTTPRequestHead) {
        if let refusal = self.refusal {
            self.refusal = nil
            return self.send(refusal, for: head)
        }
        // By UTF-8 bytes: looking for "?" by Characters walks grapheme clusters, on every request.
        let path = Substring(head.uri.utf8.prefix(while: { $0 != UInt8(ascii: "?") }))
        let isOperations = path == "/healthz" || path == "/readyz" || path == "/metrics"
        if isOperations && head.method != .GET && head.method != .HEAD {
            return self.send(Problem.methodNotAllowed(head.method), for: head)
        }
        if path == "/healthz" || path == "/readyz" { return self.respondToHealth(path, for: head) }
        let metrics = path == "/metrics" ? self.plane.exposition : nil
        if let metrics, self.plane.access.publicMetrics {
            return self.respondWithMetrics(metrics, for: head)
        }
        if !self.plane.access.isOpen, Self.hasRepeatedAuthorization(head.headers) {
            return self.send(Problem.badRequest("more than one Authorization field"), for: head)
        }
        let caller: Caller
        switch self.plane.access.authenticate(
            authorization: self.plane.access.isOpen ? nil : head.headers.first(name: "authorization"), peer: self.peer,
            metrics: self.plane.metrics, logger: self.plane.logger)
        {
        case .success(let authenticated): caller = authenticated
        case .failure(let problem): return self.send(problem, for: head)
        }
        if let metrics {
            guard caller.isAdmin else {
                self.route = .metrics
                return self.refuse(.forbidden("/metrics needs the admin role"), for: head)
            }
            return self.respondWithMetrics(metrics, for: head)
        }
        if path == "/v1/admin" || path.hasPrefix("/v1/admin/") {
            return self.respondToAdmin(head, caller: caller)
        }
        guard head.method == .GET || head.method == .HEAD else {
            return self.send(Problem.methodNotAllowed(head.method), for: head)
        }
        let target: RequestTarget
        do {
            target = try RequestTarget.parse(head.uri)
        } catch {
            return self.send(Problem(for: error, target: nil), for: head)
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
            case .files: try self.respondWithFile(target, visible: visible, for: head)
            case .stat:
                try self.respondWithStat(
                    target, image: try self.plane.cache.image(id: target.image, visible: visible),
                    for: head)
            case .dirs:
                try self.respondWithListing(
                    target, image: try self.plane.cache.image(id: target.image, visible: visible),
                    for: head)
            }
        } catch {
            self.send(Problem(for: error, target: target), for: head)
        }
    }

    /// Two Authorization fields are refused rather than the first one believed.
    private static func hasRepeatedAuthorization(_ headers: HTTPHeaders) -> Bool {
        var seen = false
        for (name, _) in headers where name.utf8.count == 13 && name.lowercased() == "authorization" {
            if seen { return true }
            seen = true
        }
        return false
    }

    // MARK: Responses

    func finish(keepAlive: Bool) {
        self.plane.metrics.record(
            route: self.route, status: self.status, sentBytes: self.sentBytes, started: self.started)
        self.plane.logger.debug(
            "request",
            metadata: [
                "request": "\(self.loggedRequestID)", "route": "\(self.route.label)",
                "status": "\(self.status?.code ?? 0)", "bytes": "\(self.sentBytes)",
                "micros": "\((NIODeadline.now() - self.started).nanoseconds / 1000)",
            ])
        self.writer?.writeEnd(keepAlive: keepAlive)
    }

    /// The client's `x-request-id`, or a random one made when something is first logged about the request.
    var loggedRequestID: String {
        if let id = self.requestID { return id }
        let id = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        self.requestID = id
        return id
    }

    func sendJSON(_ body: [UInt8], for head: HTTPRequestHead) {
        var response = ResponseHead(status: .ok, allocator: self.allocator)
        response.add("content-type", "application/json")
        self.sendWhole(body, head: response, for: head)
    }

    /// Sends `problem` as problem+json, with its own fields and those of `fields` (a file's validators).
    func send(_ problem: Problem, for head: HTTPRequestHead, fields: ResponseHead? = nil) {
        var response = fields ?? ResponseHead(status: problem.responseStatus, allocator: self.allocator)
        response.status = problem.responseStatus
        for (name, value) in problem.headers { response.add(name: name, value: value) }
        response.add("content-type", "application/problem+json")
        self.sendWhole(problem.encoded(), head: response, for: head)
    }

    /// Sends a whole response: `response` (status and fields) with the date, length and connection fields
    /// added, then `body`.
    func sendWhole(_ body: [UInt8], head response: ResponseHead, for head: HTTPRequestHead) {
        var response = response
        let status = response.status
        response.add("date", HTTPDate.now())
        // RFC 9110 §8.6: no Content-Length on a 204.
        if status != .noContent { response.add("content-length", decimal: UInt64(body.count)) }
        if !self.keepAlive { response.add("connection", "close") }
        self.writer?.writeHead(response)
        self.status = status
        if head.method != .HEAD, !body.isEmpty {
            self.sentBytes += body.count
            self.writeCharged(self.allocator.buffer(bytes: body))
        }
        self.finish(keepAlive: self.keepAlive)
    }
}
