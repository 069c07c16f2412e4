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
        case .head(let head): self.responder?.receiveHead(head)
        case .body(let part): self.responder?.receiveBody(part)
        case .end: self.responder?.receiveEnd()
        }
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
