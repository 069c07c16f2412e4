import NIOCore

/// A stream's body writes waiting for DATA frames to take them, in order. The first is held inline: most
/// responses are one write, and a queue's storage would be an allocation per stream.
struct PendingBodyWrites {
    /// A write: its bytes, its notice, and the bytes the stream gives back when it ends (0: not marked).
    typealias Write = (bytes: ByteBuffer, notice: WriteNotice?, marked: Int)

    private var first: Write?
    /// The writes after the first, made on the second.
    private var rest: CircularBuffer<Write>?

    var isEmpty: Bool { self.first == nil }

    /// The bytes of the oldest write, if any.
    var oldestByteCount: Int? { self.first?.bytes.readableBytes }

    mutating func append(_ write: Write) {
        if self.first == nil {
            self.first = write
        } else {
            self.rest = self.rest ?? CircularBuffer(initialCapacity: 4)
            self.rest!.append(write)
        }
    }

    /// Takes the first `count` bytes of the oldest write, which is longer; the rest stays queued.
    mutating func takeFromOldest(_ count: Int) -> ByteBuffer {
        precondition(self.first != nil && self.first!.bytes.readableBytes > count)
        return self.first!.bytes.readSlice(length: count)!
    }

    /// Removes the oldest write and returns it, moved out (not copied: no retain of its buffer and notice).
    mutating func removeOldest() -> Write? {
        var oldest = self.rest?.popFirst()
        swap(&oldest, &self.first)
        return oldest
    }

    /// Empties the queue, returning what it held, oldest first.
    mutating func removeAll() -> [Write] {
        var all: [Write] = []
        while let write = self.removeOldest() { all.append(write) }
        return all
    }
}
