import NIOCore
import Synchronization

/// Closes a connection on which nothing was read and no write completed for a whole idle timeout: one that
/// never sends a preface, a TLS hello or a request, one idle between requests, and one whose client stopped
/// reading a response. First in every pipeline.
///
/// NIO's `IdleStateHandler` gives every write a promise of its own (a promise, a callback and a clock read
/// per frame), which costs more than an HTTP/2 frame's own encoding. Here nothing is done per read or write
/// but counting reads; write completions are counted by the connection's ``NoticedWrites`` (a flush that
/// sends body bytes carries a promise already) in its ``ConnectionProgress``. A check every timeout compares
/// the counts with the last check's: unchanged, the connection was idle for the whole period and is closed.
/// So an idle connection goes between one and two timeouts after its last activity. A client that stops
/// reading stops completions; one that only gets responses without a body (304s, HEADs) and sends nothing
/// is idle too — but asking for them is reading.
final class IdleConnectionCloser: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    private let timeout: TimeAmount
    private let progress: ConnectionProgress
    private var reads = 0
    /// The counts at the last check.
    private var readsChecked = 0
    private var writesChecked = 0
    private var check: Scheduled<Void>?

    init(timeout: TimeAmount, progress: ConnectionProgress) {
        self.timeout = timeout
        self.progress = progress
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
        self.reads &+= 1
        context.fireChannelRead(data)
    }

    private func start(context: ChannelHandlerContext) {
        guard self.check == nil else { return }
        self.schedule(context: context)
    }

    /// Checks one timeout from now whether anything happened meanwhile.
    private func schedule(context: ChannelHandlerContext) {
        self.check = context.eventLoop.assumeIsolated().scheduleTask(in: self.timeout) {
            self.check = nil
            guard context.channel.isActive else { return }
            let writes = self.progress.writesCompleted.load(ordering: .relaxed)
            guard self.reads != self.readsChecked || writes != self.writesChecked else {
                return context.close(promise: nil)
            }
            (self.readsChecked, self.writesChecked) = (self.reads, writes)
            self.schedule(context: context)
        }
    }
}
