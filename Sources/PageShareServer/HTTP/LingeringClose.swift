import NIOCore

/// Closing a connection after its last response without losing that response (RFC 9112 §9.6): once what
/// was written is out, the sending side is shut (the client reads the response, then its end), and what the
/// client still sends is read and dropped — by the handler, which stops answering — until it closes or
/// ``lingerTime`` passes. Closing with bytes unread makes the kernel reset the connection, and a reset
/// discards what is still queued for the client: the end of a large response, a 400's reason, a GOAWAY.
enum LingeringClose {
    /// How long a closing connection reads and drops what its client still sends.
    static let lingerTime = TimeAmount.seconds(1)

    /// Closes `context`'s channel lingering once `written` (the future of its last write) completes. A
    /// channel that cannot shut only its sending side is closed at once.
    static func close(_ context: ChannelHandlerContext, after written: EventLoopFuture<Void>) {
        written.assumeIsolated().whenComplete { _ in
            let halfClosed = context.eventLoop.makePromise(of: Void.self)
            context.close(mode: .output, promise: halfClosed)
            halfClosed.futureResult.assumeIsolated().whenComplete { result in
                guard case .success = result else { return context.close(promise: nil) }
                context.eventLoop.assumeIsolated().scheduleTask(in: Self.lingerTime) { context.close(promise: nil) }
            }
        }
    }
}
