import Logging
import NIOCore
import NIOHTTP1

/// One HTTP/1.1 connection (after NIO's HTTP/1.1 codec and pipelining assistance): hands requests to its
/// ``RequestResponder`` and writes the responses, closing the connection after one that is not keep-alive.
final class HTTP1RequestHandler: ChannelInboundHandler, RemovableChannelHandler, ResponseWriter {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let plane: DataPlane
    private let peer: ConnectionPeer
    private var responder: RequestResponder?
    /// Set between `handlerAdded` and `handlerRemoved`: the responder writes through it.
    private var context: ChannelHandlerContext?
    /// A response head was written and its end not yet.
    private var responding = false

    /// Told when heads, bodies and responses end (the slowloris deadlines).
    private let deadline: RequestDeadline
    private let budget: SendBudget
    private(set) var allowance: SendAllowance?

    init(plane: DataPlane, peer: ConnectionPeer, deadline: RequestDeadline, budget: SendBudget) {
        self.plane = plane
        self.peer = peer
        self.deadline = deadline
        self.budget = budget
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let allowance = SendAllowance(budget: self.budget, closing: context, logger: self.plane.logger)
        self.allowance = allowance
        self.responder = RequestResponder(
            plane: self.plane, peer: self.peer, eventLoop: context.eventLoop, writer: self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.allowance?.close()
        self.responder?.detach()
        self.responder = nil
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(var head):
            guard head.method != .CONNECT else { return self.refuseConnect(context: context) }
            head.uri = Self.originForm(head.uri)
            var problem = Self.hostProblem(head)
            if problem == nil, let expectation = head.headers.first(name: "expect") {
                if expectation.lowercased() == "100-continue" {
                    // The client waits for this before sending the body (curl for a second, on every POST).
                    let interim = HTTPResponseHead(version: head.version, status: .continue)
                    context.writeAndFlush(self.wrapOutboundOut(.head(interim)), promise: nil)
                } else {
                    problem = Problem("expectation-failed", .expectationFailed, "only Expect: 100-continue is known")
                }
            }
            let length = head.headers.first(name: "content-length").flatMap { Int($0) } ?? 0
            self.deadline.headReceived(hasBody: length > 0 || head.headers.contains(name: "transfer-encoding"))
            self.responder?.receiveHead(head, refusal: problem)
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
    static func hostProblem(_ head: HTTPRequestHead) -> Problem? {
        guard head.version == .http1_1 else { return nil }
        var hosts = 0
        for (name, _) in head.headers where name.utf8.count == 4 && name.lowercased() == "host" { hosts += 1 }
        guard hosts != 1 else { return nil }
        return .badRequest(hosts == 0 ? "an HTTP/1.1 request needs a Host field" : "more than one Host field")
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.responder?.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.plane.logger.debug("connection error", metadata: ["error": "\(error)"])
        // A request the parser refused is answered 400 with a problem body, unless a response is being
        // written (its end would be lost); either way the connection closes: the parser cannot go on.
        if error is HTTPParserError, !self.responding {
            let problem = Problem.badRequest("the request is not valid HTTP/1.1: \(error)")
            let body = problem.encoded()
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "application/problem+json")
            headers.add(name: "content-length", value: String(body.count))
            headers.add(name: "date", value: HTTPDate.now())
            headers.add(name: "connection", value: "close")
            context.write(
                self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .badRequest, headers: headers))),
                promise: nil)
            context.write(
                self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            context.writeAndFlush(self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
            self.responding = true
            return
        }
        context.close(promise: nil)
    }

    /// Answers a CONNECT (405, problem+json) below NIO's response encoder and closes: the encoder drops the
    /// body and framing of any response to CONNECT (a tunnel's), which left the client a head with a type
    /// and no body.
    private func refuseConnect(context: ChannelHandlerContext) {
        let problem = Problem.methodNotAllowed(.CONNECT)
        let body = problem.encoded()
        var text = "HTTP/1.1 405 Method Not Allowed\r\nallow: GET, HEAD\r\ncontent-type: application/problem+json\r\n"
        text += "content-length: \(body.count)\r\ndate: \(HTTPDate.now())\r\nconnection: close\r\n\r\n"
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count + body.count)
        buffer.writeString(text)
        buffer.writeBytes(body)
        guard let encoder = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self) else {
            return context.close(promise: nil)
        }
        encoder.writeAndFlush(NIOAny(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        self.responding = true
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.allowance?.close()
        self.responder?.detach()
        context.fireChannelInactive()
    }

    // MARK: ResponseWriter

    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    func writeHead(_ head: HTTPResponseHead) {
        self.responding = true
        self.context?.write(self.wrapOutboundOut(.head(head)), promise: nil)
    }

    func writeBody(_ bytes: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard let context = self.context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(self.wrapOutboundOut(.body(.byteBuffer(bytes))), promise: promise)
    }

    func writeEnd(keepAlive: Bool) {
        self.responding = false
        self.deadline.responseEnded()
        guard let context = self.context else { return }
        guard !keepAlive else { return context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil) }
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: done)
        done.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    func flush() { self.context?.flush() }

    func abort() { self.context?.close(promise: nil) }
}
