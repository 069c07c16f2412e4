import NIOCore
import Synchronization

/// What one connection's handlers share about its requests: whether one was ever completed (a connection
/// that has not is shed first at the connection limit), and the head and body deadlines of HTTP/1.1.
final class ConnectionProgress: Sendable {
    /// A request was read to its end on this connection.
    let completedRequest = Atomic<Bool>(false)
    /// Flushes whose writes carried notices (response bodies) and have ended: the idle timeout's sign that
    /// the client is still reading. Counted by the connection's ``NoticedWrites``.
    let writesCompleted = Atomic<Int>(0)
}

/// Deadlines a client cannot stretch by sending slowly (slowloris): a request head must be complete within
/// `headerTimeout` of its first byte (of the connection's start, for the first one), and a request body
/// within `bodyTimeout` of its head, however the bytes trickle in (each byte reset the idle timeout). First
/// bytes to arrive after a request end start the next head's deadline; between requests the idle timeout
/// applies. A connection past a deadline is closed. For HTTP/2 the sniffer stops it (the preface and frames
/// have their own limits there).
final class RequestDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private enum State {
        /// Waiting for a request head that has begun (or for the first one).
        case head
        /// Reading the body of a request whose head arrived.
        case body
        /// A request is being answered, or the connection is idle between requests.
        case quiet
    }

    private let headerTimeout: TimeAmount
    private let bodyTimeout: TimeAmount
    private let progress: ConnectionProgress
    private var state = State.head
    /// When the current state's deadline passes (meaningless while quiet).
    private var deadline = NIODeadline.distantFuture
    /// One timer at a time, at `timerDeadline`; it is not cancelled when a request settles (that would cost a
    /// scheduled task per request): when it fires it closes the connection if the deadline of the state then
    /// has passed, waits again if a later one is set, and goes away if the connection is quiet.
    private var timer: Scheduled<Void>?
    private var timerDeadline = NIODeadline.distantFuture
    private var context: ChannelHandlerContext?
    /// A response is being written: bytes that arrive meanwhile (a pipelined request) start no deadline
    /// until it ends.
    private var answering = false
    /// Set for HTTP/2 connections.
    private var stopped = false

    init(headerTimeout: TimeAmount, bodyTimeout: TimeAmount, progress: ConnectionProgress) {
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
        self.progress = progress
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.arm(.head, after: self.headerTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .quiet = self.state, !self.answering, !self.stopped { self.arm(.head, after: self.headerTimeout) }
        context.fireChannelRead(data)
    }

    // MARK: Told by the HTTP/1.1 request handler

    /// A request head arrived; `hasBody`: its body is still to come.
    func headReceived(hasBody: Bool) {
        if hasBody {
            self.arm(.body, after: self.bodyTimeout)
        } else {
            self.settle()
        }
    }

    /// The request was read to its end.
    func requestEnded() {
        self.progress.completedRequest.store(true, ordering: .relaxed)
        self.settle()
        self.answering = true
    }

    /// The response to the last request was written to its end.
    func responseEnded() {
        self.answering = false
    }

    /// The connection speaks HTTP/2: no HTTP/1.1 deadlines, now or after later reads (which would otherwise
    /// start a "head" deadline that cut a busy HTTP/2 connection after the header timeout).
    func stop() {
        self.stopped = true
        self.settle()
    }

    private func settle() {
        self.state = .quiet
    }

    private func arm(_ state: State, after timeout: TimeAmount) {
        self.state = state
        self.deadline = .now() + timeout
        guard self.timer == nil || self.deadline < self.timerDeadline else { return }
        self.timer?.cancel()
        self.schedule(at: self.deadline)
    }

    private func schedule(at deadline: NIODeadline) {
        guard let context = self.context else { return }
        self.timerDeadline = deadline
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.timer = nil
            self.timerDeadline = .distantFuture
            if case .quiet = self.state { return }
            if NIODeadline.now() >= self.deadline { return context.close(promise: nil) }
            self.schedule(at: self.deadline)
        }
    }
}
