import NIOCore
import NIOEmbedded
import Testing

@testable import PageShareServer

/// A connection's batched writes: held until the next write or the flush, a small body joined to the head
/// before it, notices told once the batch is written.
@Suite("Noticed writes")
struct NoticedWritesTests {
    final class Recorder: WriteObserver {
        var told: [(bytes: Int, succeeded: Bool)] = []
        func written(_ bytes: Int, _ result: Result<Void, any Error>) {
            self.told.append((bytes, (try? result.get()) != nil))
        }
    }

    /// The handler whose context the writes go through.
    final class Outlet: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
    }

    static func connection() throws -> (EmbeddedChannel, ChannelHandlerContext, NoticedWrites) {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(Outlet())
        let context = try channel.pipeline.syncOperations.context(handlerType: Outlet.self)
        return (channel, context, NoticedWrites(progress: ConnectionProgress()))
    }

    static func written(_ channel: EmbeddedChannel) throws -> [String] {
        var out: [String] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { out.append(String(buffer: buffer)) }
        return out
    }

    @Test("a joined write goes out as one buffer, head then body; its notice is told once it is written")
    func joined() throws {
        let (channel, context, writes) = try Self.connection()
        let recorder = Recorder()
        writes.write(ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\n"), notice: nil, context: context)
        writes.writeJoined(ByteBuffer(string: "body"), notice: WriteNotice(recorder, bytes: 4), context: context)
        #expect(try Self.written(channel).isEmpty)  // held until the flush
        #expect(recorder.told.isEmpty)
        writes.flush(context: context)
        #expect(try Self.written(channel) == ["HTTP/1.1 200 OK\r\n\r\nbody"])
        #expect(recorder.told.count == 1 && recorder.told.first?.bytes == 4 && recorder.told.first?.succeeded == true)
        #expect(try channel.finish().isClean)
    }

    @Test("with nothing held, a joined write is an ordinary one; ordinary writes stay apart, in order")
    func apart() throws {
        let (channel, context, writes) = try Self.connection()
        writes.writeJoined(ByteBuffer(string: "first"), notice: nil, context: context)
        writes.write(ByteBuffer(string: "second"), notice: nil, context: context)
        writes.write(ByteBuffer(string: "third"), notice: nil, context: context)
        writes.flush(context: context)
        #expect(try Self.written(channel) == ["first", "second", "third"])
        #expect(try channel.finish().isClean)
    }

    @Test("joining copies: a held view of shared memory (lent cache pages) is not written into")
    func sharedHeld() throws {
        let (channel, context, writes) = try Self.connection()
        let slab = ByteBuffer(string: "pagepagepage")
        writes.write(slab.getSlice(at: 0, length: 4)!, notice: nil, context: context)
        writes.writeJoined(ByteBuffer(string: "XYZ"), notice: nil, context: context)
        writes.flush(context: context)
        #expect(try Self.written(channel) == ["pageXYZ"])
        #expect(String(buffer: slab) == "pagepagepage")
        #expect(try channel.finish().isClean)
    }

    @Test("the connection gone before the flush: the held write is dropped and its notices told the failure")
    func failed() throws {
        let (channel, context, writes) = try Self.connection()
        let recorder = Recorder()
        writes.write(ByteBuffer(string: "head"), notice: nil, context: context)
        writes.writeJoined(ByteBuffer(string: "body"), notice: WriteNotice(recorder, bytes: 4), context: context)
        writes.fail()
        writes.flush(context: context)
        #expect(try Self.written(channel).isEmpty)
        #expect(recorder.told.count == 1 && recorder.told.first?.succeeded == false)
        #expect(try channel.finish().isClean)
    }
}
