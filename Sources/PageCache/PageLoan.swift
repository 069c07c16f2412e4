import NIOCore

/// Resident pages of a file lent without copying: each element is a read-only `ByteBuffer` view of the
/// cache's own page memory, in file order, together `byteCount` bytes. Every page stays pinned — never
/// evicted, dropped or refilled — until the loan is released, which happens when the last reference to it
/// goes: keep it alive until the bytes have been written out (for NIO, until the write's promise completes).
///
/// Made by ``CachedFile/borrowResident(at:maxBytes:)``, of pages or of chunks.
public final class PageLoan: Sendable, RandomAccessCollection {
    struct LentPage: Sendable {
        var bytes: ByteBuffer
        var shard: any LoanPinning
        var slot: Int32
    }

    private let pages: [LentPage]
    /// The bytes lent, over all views.
    public let byteCount: Int

    init(pages: [LentPage], byteCount: Int) {
        self.pages = pages
        self.byteCount = byteCount
    }

    deinit {
        for page in self.pages { page.shard.unpin(page.slot) }
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { self.pages.count }
    public subscript(position: Int) -> ByteBuffer { self.pages[position].bytes }
}

/// A store whose lent bytes stay put until the loan gives its slot back.
protocol LoanPinning: AnyObject, Sendable {
    func unpin(_ slot: Int32)
}
