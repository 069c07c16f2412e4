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

    init(plane: DataPlane, peer: ConnectionPeer) {
        self.plane = plane
        self.peer = peer
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.responder = RequestResponder(
            plane: self.plane, peer: self.peer, eventLoop: context.eventLoop, writer: self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.responder?.detach()
        self.responder = nil
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(var head):
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
            self.responder?.receiveHead(head, refusal: problem)
        case .body(let part): self.responder?.receiveBody(part)
        case .end: self.responder?.receiveEnd()
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
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.responder?.detach()
        context.fireChannelInactive()
    }

    // MARK: ResponseWriter

    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    func writeHead(_ head: HTTPResponseHead) {
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
        guard let context = self.context else { return }
        guard !keepAlive else { return context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil) }
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: done)
        done.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    func flush() { self.context?.flush() }

    func abort() { self.context?.close(promise: nil) }
}
