import NIOCore

/// Closes a connection on which nothing was read and no write completed for the idle timeout: one that
/// never sends a preface, a TLS hello or a request, one idle between requests, and one whose client stopped
/// reading a response. First in every pipeline.
///
/// NIO's `IdleStateHandler` does this by giving every write a promise of its own (a promise, a callback and
/// a clock read per frame), which costs more than an HTTP/2 frame's own encoding. Here at most one write is
/// tracked at a time, and only one that carries a promise already (the last write of a flush that sends body
/// bytes does: ``NoticedWrites``): the next such write after a tracked one completed is tracked again. A
/// client that stops reading stops completions, so nothing counts as activity any more. Writes queued behind
/// a tracked one that complete before any new write is made are not seen: a connection that only drains old
/// writes, for longer than the timeout, is closed as idle; so is one that only gets responses without a
/// body (304s, HEADs) and sends nothing — but asking for them is reading.
final class IdleConnectionCloser: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny

    private let timeout: TimeAmount
    private var lastActivity = NIODeadline.now()
    private var trackingWrite = false
    private var check: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.start(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.check?.cancel()
        self.check = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        self.start(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.check?.cancel()
        self.check = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.lastActivity = .now()
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !self.trackingWrite, let promise else { return context.write(data, promise: promise) }
        self.trackingWrite = true
        promise.futureResult.assumeIsolated().whenComplete { _ in
            self.trackingWrite = false
            self.lastActivity = .now()
        }
        context.write(data, promise: promise)
    }

    private func start(context: ChannelHandlerContext) {
        guard self.check == nil else { return }
        self.lastActivity = .now()
        self.schedule(context: context)
    }

    /// Checks when the timeout would expire if nothing happened since the last activity.
    private func schedule(context: ChannelHandlerContext) {
        self.check = context.eventLoop.assumeIsolated().scheduleTask(deadline: self.lastActivity + self.timeout) {
            self.check = nil
            guard context.channel.isActive else { return }
            if NIODeadline.now() - self.lastActivity >= self.timeout {
                context.close(promise: nil)
            } else {
                self.schedule(context: context)
            }
        }
    }
}
