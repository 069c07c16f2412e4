import NIOCore
import Testing

@testable import PageShareServer

/// An HTTP/2 stream's queue of body writes: order kept across the inline first write and the queue after
/// it, a frame taking part of the oldest write, notices handed out with their writes only.
@Suite("Pending body writes")
struct PendingBodyWritesTests {
    final class Observer: WriteObserver {
        func written(_ bytes: Int, _ result: Result<Void, any Error>) {}
    }

    static func write(_ text: String, notice: WriteNotice? = nil, marked: Int = 0) -> PendingBodyWrites.Write {
        (ByteBuffer(string: text), notice, marked)
    }

    @Test("writes come out oldest first, past the inline first one")
    func order() {
        var writes = PendingBodyWrites()
        #expect(writes.isEmpty && writes.oldestByteCount == nil && writes.removeOldest() == nil)
        for text in ["a", "bb", "ccc", "dddd"] { writes.append(Self.write(text)) }
        #expect(writes.oldestByteCount == 1)
        var seen: [String] = []
        while let write = writes.removeOldest() { seen.append(String(buffer: write.bytes)) }
        #expect(seen == ["a", "bb", "ccc", "dddd"])
        #expect(writes.isEmpty)
        // Emptied, it starts again inline.
        writes.append(Self.write("e"))
        #expect(writes.removeAll().map { String(buffer: $0.bytes) } == ["e"])
    }

    @Test("a frame takes the front of the oldest write; the rest stays first, with its notice and mark")
    func partialTake() {
        let observer = Observer()
        var writes = PendingBodyWrites()
        writes.append(Self.write("hello world", notice: WriteNotice(observer, bytes: 11), marked: 11))
        writes.append(Self.write("next"))
        #expect(String(buffer: writes.takeFromOldest(6)) == "hello ")
        #expect(writes.oldestByteCount == 5)
        let rest = writes.removeOldest()
        #expect(rest.map { String(buffer: $0.bytes) } == "world")
        #expect(rest?.notice?.bytes == 11 && rest?.notice?.observer === observer && rest?.marked == 11)
        #expect(writes.removeOldest().map { String(buffer: $0.bytes) } == "next")
        #expect(writes.isEmpty)
    }

    @Test("removeAll hands back every write, oldest first, and leaves the queue empty")
    func removeAll() {
        var writes = PendingBodyWrites()
        for text in ["1", "22", "333"] { writes.append(Self.write(text, marked: text.count)) }
        let all = writes.removeAll()
        #expect(all.map { String(buffer: $0.bytes) } == ["1", "22", "333"] && all.map(\.marked) == [1, 2, 3])
        #expect(writes.isEmpty && writes.oldestByteCount == nil)
    }
}
