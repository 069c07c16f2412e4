/// Feeds a file's bytes to a ``ContentDefinedChunker`` piece by piece (as they are read) and hands out its
/// chunks: a chunk that crosses pieces is kept (at most ``ContentDefinedChunker/maximumBytes``) until its
/// boundary arrives.
public struct ChunkStream {
    public let chunker: ContentDefinedChunker
    private var pending: [UInt8] = []

    public init(chunker: ContentDefinedChunker) {
        self.chunker = chunker
        self.pending.reserveCapacity(chunker.maximumBytes * 2)
    }

    /// Adds the next `bytes` of the file; `body` gets each chunk completed.
    public mutating func append(_ bytes: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> Void)
        rethrows
    {
        var rest = bytes
        while !rest.isEmpty {
            // Top up the pending bytes to a full maximum chunk, then cut what is certain.
            let take = min(rest.count, self.chunker.maximumBytes * 2 - self.pending.count)
            self.pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest[0..<take]))
            rest = UnsafeRawBufferPointer(rebasing: rest[take...])
            try self.cut(isEnd: false, body)
        }
    }

    /// The file ended: `body` gets the chunks left.
    public mutating func finish(_ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        try self.cut(isEnd: true, body)
        self.pending.removeAll(keepingCapacity: true)
    }

    private mutating func cut(isEnd: Bool, _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        let consumed = try self.pending.withUnsafeBytes { bytes -> Int in
            var start = 0
            while start < bytes.count {
                let rest = UnsafeRawBufferPointer(rebasing: bytes[start...])
                guard let length = self.chunker.chunkLength(rest, isEnd: isEnd) else { break }
                try body(UnsafeRawBufferPointer(rebasing: rest[0..<length]))
                start += length
            }
            return start
        }
        self.pending.removeFirst(consumed)
    }
}
