import NIOCore

/// Tells HTTP/2 with prior knowledge from HTTP/1.1 on a cleartext connection by its first bytes (the HTTP/2
/// client preface, RFC 9113 §3.4), configures the pipeline for the one it is, and steps aside, passing the
/// bytes read so far on.
final class HTTPVersionSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    private let configureHTTP1: (any Channel) throws -> Void
    private let configureHTTP2: (any Channel) throws -> Void
    private var buffered: ByteBuffer?

    init(
        configureHTTP1: @escaping (any Channel) throws -> Void, configureHTTP2: @escaping (any Channel) throws -> Void
    ) {
        self.configureHTTP1 = configureHTTP1
        self.configureHTTP2 = configureHTTP2
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = self.unwrapInboundIn(data)
        if self.buffered == nil {
            self.buffered = incoming
        } else {
            self.buffered!.writeBuffer(&incoming)
        }
        let bytes = self.buffered!.readableBytesView
        let count = min(bytes.count, Self.preface.count)
        let matches = bytes.prefix(count).elementsEqual(Self.preface.prefix(count))
        if matches && count < Self.preface.count { return }  // not enough bytes to tell yet
        do {
            if matches {
                try self.configureHTTP2(context.channel)
            } else {
                try self.configureHTTP1(context.channel)
            }
        } catch {
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        let data = self.buffered!
        self.buffered = nil
        context.fireChannelRead(self.wrapInboundOut(data))
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
