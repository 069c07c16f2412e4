import NIOCore
import PageCache
import Synchronization

/// Told when bytes it wrote have reached the connection's socket (or failed to).
protocol WriteObserver: AnyObject {
    func written(_ bytes: Int, _ result: Result<Void, any Error>)
}

/// The notice of one write: `observer` is told of `bytes` once the write ends; `loan` (lent cache pages the
/// write points into) is held until then, so that the pages are not reused while NIO still holds them.
struct WriteNotice {
    let observer: any WriteObserver
    let bytes: Int
    var loan: PageLoan?

    init(_ observer: any WriteObserver, bytes: Int, loan: PageLoan? = nil) {
        self.observer = observer
        self.bytes = bytes
        self.loan = loan
    }

    /// Tells the observer (the loan goes with the notice).
    func tell(_ result: Result<Void, any Error>) {
        self.observer.written(self.bytes, result)
    }
}

/// A connection's writes, with their notices told together when the last write of a flush ends: one
/// promise per flush instead of one per body chunk. NIO ends a channel's writes in order (and fails every
/// one left when the channel closes), so the last write of a batch ending means all of them have.
///
/// The latest write is held until the next one or the flush, so that the batch's last write — the one that
/// carries the promise — is known when it is made; a large one (``promptBytes``) is made at once, with its
/// own promise.
///
/// A class: a write or flush may end writes at once, and the notices told then may write again (a body
/// goes on), re-entering it — a mutating method of a struct property would hold exclusive access meanwhile.
final class NoticedWrites {
    private var held: ByteBuffer?
    private var notices: [WriteNotice] = []
    /// Told of every batch of writes that ends (the idle timeout's view of a client that reads).
    private let progress: ConnectionProgress

    init(progress: ConnectionProgress) {
        self.progress = progress
    }

    /// Writes `bytes` (held until the next write or flush), noting `notice`.
    func write(_ bytes: ByteBuffer, notice: WriteNotice?, context: ChannelHandlerContext) {
        if let held = self.held { context.write(NIOAny(held), promise: nil) }
        self.held = bytes
        guard let notice else { return }
        self.notices.append(notice)
        // A large write is made at once with its own promise: its room goes back as soon as it is written,
        // and nothing waits outside NIO's buffer (which the writer's writability counts). A promise per
        // 16 KiB or more costs nothing next to the bytes; the batching is for small responses.
        if notice.bytes >= Self.promptBytes { self.writeHeld(context: context) }
    }

    /// Writes `bytes` copied onto the end of the held write (nothing held: as ``write(_:notice:context:)``),
    /// noting `notice`. For an HTTP/1.1 head and a small body: one write through the pipeline and one iovec
    /// instead of two cost more than copying a few KiB.
    func writeJoined(_ bytes: ByteBuffer, notice: WriteNotice?, context: ChannelHandlerContext) {
        guard var held = self.held else { return self.write(bytes, notice: notice, context: context) }
        self.held = nil  // `held` the only reference: the bytes are added in place if there is room
        held.writeImmutableBuffer(bytes)
        self.held = held
        if let notice { self.note(notice) }
    }

    /// Notices of writes this large are told as soon as their write ends, not with the flush's last one.
    static let promptBytes = 16 * 1024

    /// Notes `notice` for the writes made so far in this batch.
    func note(_ notice: WriteNotice) {
        self.notices.append(notice)
    }

    /// Makes the held write, carrying the batch's promise if anything is to be told, without flushing.
    func writeHeld(context: ChannelHandlerContext) {
        guard self.held != nil || !self.notices.isEmpty else { return }
        let held = self.held ?? context.channel.allocator.buffer(capacity: 0)
        self.held = nil
        guard !self.notices.isEmpty else { return context.write(NIOAny(held), promise: nil) }
        let notices = self.notices
        self.notices.removeAll(keepingCapacity: true)
        let promise = context.eventLoop.makePromise(of: Void.self)
        let progress = self.progress
        promise.futureResult.assumeIsolated().whenComplete { result in
            progress.writesCompleted.add(1, ordering: .relaxed)
            for notice in notices { notice.tell(result) }
        }
        context.write(NIOAny(held), promise: promise)
    }

    /// Makes the held write, then flushes.
    func flush(context: ChannelHandlerContext) {
        self.writeHeld(context: context)
        context.flush()
    }

    /// The connection is gone before the held write was made: it is dropped and its notices told `error`.
    func fail(_ error: any Error = ChannelError.ioOnClosedChannel) {
        self.held = nil
        let notices = self.notices
        self.notices = []
        for notice in notices { notice.tell(.failure(error)) }
    }
}
