import Logging
import NIOCore
import NIOHTTP1

/// One HTTP/1.1 connection (after NIO's request decoder): hands requests to its ``RequestResponder`` and
/// writes the responses as bytes (``ResponseHead/http1Bytes(minorVersion:closing:)``, ``NoticedWrites``),
/// closing the connection after one that is not keep-alive (lingering: ``LingeringClose``).
///
/// Pipelined requests wait their turn here: a request head that arrives while the previous response is
/// owed is queued with the parts after it, and reading from the socket stops until the queue is drained,
/// so a client pipelining without end holds one socket read's worth. On shutdown
/// (`ChannelShouldQuiesceEvent`) an idle connection closes at once, a busy one after its current response.
final class HTTP1RequestHandler: ChannelDuplexHandler, RemovableChannelHandler, ResponseWriter {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let plane: DataPlane
    private let peer: ConnectionPeer
    private var responder: RequestResponder?
    /// What the responder shares with the connection (set in `handlerAdded`).
    private var scope: ConnectionScope?
    /// Set between `handlerAdded` and `handlerRemoved`: the responder writes through it.
    private var context: ChannelHandlerContext?
    /// A response head was written and its end not yet.
    private var responding = false
    /// A request head was handed to the responder and its response has not ended.
    private var responseOwed = false
    /// Parts of pipelined requests that arrived while a response was owed, in order, and the parser's error
    /// after them (answered in its turn, not before the responses owed).
    private var queued = CircularBuffer<Inbound>()

    private enum Inbound {
        case part(HTTPServerRequestPart)
        case error(any Error)
    }
    /// A socket read was asked for while requests were queued: done once the queue is empty.
    private var readHeld = false
    /// Set while the queue is being handed on (a response that ends during it does not start another pass).
    private var draining = false
    /// Shutdown was asked for: the connection closes after the response owed.
    private var quiescing = false
    /// The last response is written and the connection lingers before it closes (``LingeringClose``):
    /// nothing more is read as a request, answered or queued.
    private var closing = false
    /// The minor version of the request being answered (HTTP/1.0 gets an HTTP/1.0 status line).
    private var minorVersion = 1
    /// The head just written is held (not yet passed down the pipeline): a small body can join it.
    private var headHeld = false
    /// Response bytes written since the last flush, with their notices.
    private let writes: NoticedWrites

    /// Told when heads, bodies and responses end (the slowloris deadlines).
    private let deadline: RequestDeadline
    private let budget: SendBudget
    private(set) var allowance: SendAllowance?

    init(
        plane: DataPlane, peer: ConnectionPeer, deadline: RequestDeadline, progress: ConnectionProgress,
        budget: SendBudget
    ) {
        self.plane = plane
        self.peer = peer
        self.deadline = deadline
        self.writes = NoticedWrites(progress: progress)
        self.budget = budget
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let allowance = SendAllowance(budget: self.budget, closing: context, logger: self.plane.logger)
        self.allowance = allowance
        let scope = ConnectionScope(plane: self.plane, peer: self.peer, eventLoop: context.eventLoop)
        self.scope = scope
        self.responder = RequestResponder(scope: scope, writer: self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.writes.fail()
        self.allowance?.close()
        self.responder?.detach()
        self.responder = nil
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.closing else { return }
        self.scope?.readStarted()
        let part = self.unwrapInboundIn(data)
        if !self.queued.isEmpty || (self.responseOwed && Self.isHead(part)) {
            self.queued.append(.part(part))
            return
        }
        self.receive(part, context: context)
    }

    private static func isHead(_ part: HTTPServerRequestPart) -> Bool {
        if case .head = part { return true }
        return false
    }

    private func receive(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(var head):
            self.responseOwed = true
            self.minorVersion = head.version.minor
            guard head.method != .CONNECT else { return self.refuseConnect(context: context) }
            head.uri = Self.originForm(head.uri)
            let request = Request(head)
            var problem = Self.hostProblem(request)
            if problem == nil, let expectation = request.fields.expect {
                if expectation.lowercased() == "100-continue" {
                    // The client waits for this before sending the body (curl for a second, on every POST).
                    let interim = ResponseHead(status: .continue, allocator: context.channel.allocator, capacity: 0)
                    self.writes.write(
                        interim.http1Bytes(minorVersion: head.version.minor, closing: false), notice: nil,
                        context: context)
                    self.writes.flush(context: context)
                } else {
                    problem = Problem("expectation-failed", .expectationFailed, "only Expect: 100-continue is known")
                }
            }
            let length = request.fields.contentLength.flatMap { Int($0) } ?? 0
            self.deadline.headReceived(hasBody: length > 0 || request.fields.hasTransferEncoding)
            self.responder?.receiveHead(request, refusal: problem)
        case .body(let part): self.responder?.receiveBody(part)
        case .end:
            self.deadline.requestEnded()
            self.responder?.receiveEnd()
        }
    }

    /// The path and query of an absolute-form target (`http://host/v1/...`, RFC 9112 §3.2.2), which a
    /// server must accept; other targets as they are.
    static func originForm(_ uri: String) -> String {
        guard uri.utf8.first != UInt8(ascii: "/") else { return uri }
        let lowered = uri.prefix(8).lowercased()
        let schemeEnd: String.Index
        if lowered.hasPrefix("http://") {
            schemeEnd = uri.index(uri.startIndex, offsetBy: 7)
        } else if lowered.hasPrefix("https://") {
            schemeEnd = uri.index(uri.startIndex, offsetBy: 8)
        } else {
            return uri
        }
        let rest = uri[schemeEnd...]
        guard let start = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) else { return "/" }
        return rest[start] == "/" ? String(rest[start...]) : "/" + rest[start...]
    }

    /// 400 for an HTTP/1.1 request without exactly one Host field (RFC 9112 §3.2).
    static func hostProblem(_ request: Request) -> Problem? {
        guard request.version == .http1_1 else { return nil }
        let hosts = request.fields.hostCount
        guard hosts != 1 else { return nil }
        return .badRequest(hosts == 0 ? "an HTTP/1.1 request needs a Host field" : "more than one Host field")
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.scope?.readEnded()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.responder?.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Lingering, the parser's complaints about what the client still sends are expected; and once the
        // parser failed (its error is answered in turn), every later read is reported as data received in
        // that state: closing then would cut the responses still owed.
        guard !self.closing else { return }
        if case ByteToMessageDecoderError.dataReceivedInErrorState = error { return }
        if error is HTTPParserError, !self.queued.isEmpty || self.responseOwed {
            self.queued.append(.error(error))
            return
        }
        self.handle(error, context: context)
    }

    private func handle(_ error: any Error, context: ChannelHandlerContext) {
        self.plane.logger.debug("connection error", metadata: ["error": "\(error)"])
        // A request the parser refused is answered 400 with a problem body, unless a response is being
        // written (its end would be lost); either way the connection closes: the parser cannot go on.
        if error is HTTPParserError, !self.responding {
            return self.answerAndClose(Problem.badRequest("the request is not valid HTTP/1.1: \(error)"), context)
        }
        context.close(promise: nil)
    }

    /// Answers a CONNECT (405, problem+json) and closes: no tunnel is opened, and nothing after the request
    /// is read.
    private func refuseConnect(context: ChannelHandlerContext) {
        self.answerAndClose(Problem.methodNotAllowed(.CONNECT), context)
    }

    /// Writes `problem` as a whole problem+json response (its own fields, such as `allow`, included), then
    /// closes the connection once it is written.
    private func answerAndClose(_ problem: Problem, _ context: ChannelHandlerContext) {
        let body = problem.encoded()
        var head = ResponseHead(
            status: problem.responseStatus, allocator: context.channel.allocator, capacity: 256 + body.count)
        head.answer(problem)
        head.add("content-length", decimal: UInt64(body.count))
        head.add("date", HTTPDate.now())
        var buffer = head.http1Bytes(minorVersion: 1, closing: true)
        buffer.writeBytes(body)
        self.writes.writeHeld(context: context)
        self.responding = true
        self.closeLingering(after: context.writeAndFlush(self.wrapOutboundOut(buffer)), context: context)
    }

    /// Closes the connection once `written` completes, lingering (``LingeringClose``): what the client
    /// still sends is read and dropped, the requests queued with it too.
    private func closeLingering(after written: EventLoopFuture<Void>, context: ChannelHandlerContext) {
        self.closing = true
        self.queued.removeAll()
        if self.readHeld {
            self.readHeld = false
            context.read()
        }
        LingeringClose.close(context, after: written)
    }

    func read(context: ChannelHandlerContext) {
        guard self.queued.isEmpty || self.closing else {
            self.readHeld = true
            return
        }
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        self.quiescing = true
        if !self.responseOwed { context.close(promise: nil) }
    }

    /// Hands the queued parts on, in order: the parts of a request, then the next request once its
    /// response is no longer owed.
    private func drainQueue(context: ChannelHandlerContext) {
        guard !self.draining else { return }
        self.draining = true
        defer { self.draining = false }
        while let next = self.queued.first {
            switch next {
            case .part(let part):
                if self.responseOwed && Self.isHead(part) { break }
                self.queued.removeFirst()
                self.receive(part, context: context)
                continue
            case .error(let error):
                if self.responseOwed { break }
                self.queued.removeFirst()
                self.handle(error, context: context)
                continue
            }
            break
        }
        if self.queued.isEmpty && self.readHeld {
            self.readHeld = false
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.writes.fail()
        self.allowance?.close()
        self.responder?.detach()
        context.fireChannelInactive()
    }

    // MARK: ResponseWriter

    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    func writeHead(_ head: ResponseHead) {
        self.responding = true
        guard let context = self.context else { return }
        self.writes.write(
            head.http1Bytes(minorVersion: self.minorVersion, closing: self.quiescing), notice: nil, context: context)
        self.headHeld = true
    }

    func writeBody(_ bytes: ByteBuffer, notice: WriteNotice?) {
        guard let context = self.context else {
            notice?.tell(.failure(ChannelError.ioOnClosedChannel))
            return
        }
        // A small first body write is copied after the head (a larger one, lent cache pages among them, goes
        // out as it is).
        if self.headHeld && bytes.readableBytes <= Self.joinedBodyBytes {
            self.writes.writeJoined(bytes, notice: notice, context: context)
        } else {
            self.writes.write(bytes, notice: notice, context: context)
        }
        self.headHeld = false
    }

    /// A first body write up to this size is copied after the head: as HTTP/2 copies DATA payloads this size.
    static let joinedBodyBytes = HTTP2Connection.copiedPayloadBytes

    func writeEnd(keepAlive: Bool) {
        self.headHeld = false
        self.responding = false
        self.responseOwed = false
        self.deadline.responseEnded()
        guard let context = self.context else { return }
        guard keepAlive && !self.quiescing else {
            // Closed once what was written is out (a close now would drop unsent bytes): an empty write's
            // future completes after the writes before it.
            self.writes.writeHeld(context: context)
            let written = context.writeAndFlush(self.wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)))
            return self.closeLingering(after: written, context: context)
        }
        self.writes.flush(context: context)
        if !self.queued.isEmpty || self.readHeld { self.drainQueue(context: context) }
    }

    func flush() {
        self.headHeld = false
        guard let context = self.context else { return }
        self.writes.flush(context: context)
    }

    func abort() {
        // The writes held back are dropped with the connection: their notices are told now.
        self.writes.fail()
        self.context?.close(promise: nil)
    }
}
