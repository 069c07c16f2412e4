import NIOCore

/// Closes a connection on the `IdleStateHandler`'s event: nothing read or written for the idle timeout —
/// before the protocol is known, between requests, or because the client stopped reading a response.
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
