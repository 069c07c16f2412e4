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

    /// The oldest write, if any.
    var oldest: Write? { self.first }

    mutating func append(_ write: Write) {
        if self.first == nil {
            self.first = write
        } else {
            self.rest = self.rest ?? CircularBuffer(initialCapacity: 4)
            self.rest!.append(write)
        }
    }

    /// Replaces the oldest write (what is left of it after a frame took part).
    mutating func replaceOldest(with write: Write) {
        precondition(self.first != nil)
        self.first = write
    }

    @discardableResult
    mutating func removeOldest() -> Write? {
        let oldest = self.first
        self.first = self.rest?.popFirst()
        return oldest
    }

    /// Empties the queue, returning what it held, oldest first.
    mutating func removeAll() -> [Write] {
        var all: [Write] = []
        while let write = self.removeOldest() { all.append(write) }
        return all
    }
}
