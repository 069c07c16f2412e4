import NIOCore

/// Closes an HTTP/1.1 connection on the `IdleStateHandler`'s event: nothing read or written for the idle
/// timeout, whether between requests or because the client stopped reading a response.
final class IdleConnectionCloser: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
