/// The chunk store: resident chunks of every domain under one byte budget, striped over ``ChunkShard``s by
/// key, each a log of segments.
///
/// Sizing: segments of 64 KiB to 1 MiB, never smaller than the largest chunk, at least eight per shard (so
/// that eviction by compaction has old segments to choose from); shards halved until that holds.
final class ChunkStore: Sendable {
    let shards: [ChunkShard]
    let chunker: ContentDefinedChunker
    /// Chunk maps cut files in windows of this many bytes (a boundary at each window's start).
    let windowBytes: Int
    /// Every identity made equal (tests of the byte comparison that guards sharing); never set in service.
    let collidingIdentities: Bool

    init(budgetBytes: Int, shardCount: Int, chunker: ContentDefinedChunker, collidingIdentities: Bool = false) {
        let smallest = max(chunker.maximumBytes, 64 * 1024)
        var shards = 1
        while shards * 2 <= shardCount && budgetBytes / (shards * 2) >= 8 * smallest { shards *= 2 }
        let perShard = budgetBytes / shards
        var segmentSize = smallest
        while segmentSize * 2 <= 1 << 20 && perShard / (segmentSize * 2) >= 8 { segmentSize *= 2 }
        // A budget under eight smallest segments: segments of one chunk's worth.
        if perShard / segmentSize < 8 { segmentSize = chunker.maximumBytes }
        let segments = max(1, perShard / segmentSize)
        self.shards = (0..<shards).map { _ in ChunkShard(segments: segments, segmentSize: segmentSize) }
        self.chunker = chunker
        self.windowBytes = 1 << 20
        self.collidingIdentities = collidingIdentities
    }

    /// The budget the segments hold.
    var budgetBytes: Int { self.shards.count * self.shards[0].segmentCount * self.shards[0].segmentSize }

    func shard(for key: ChunkKey) -> ChunkShard {
        // Top bits of a second mix: the index's home bucket uses the low ones.
        let mixed = key.mixedHash &* 0x9E37_79B9_7F4A_7C15
        return self.shards[Int(truncatingIfNeeded: mixed >> 40) & (self.shards.count - 1)]
    }

    /// Resident chunk bytes and count over every shard.
    var resident: (bytes: Int, chunks: Int) {
        self.shards.reduce((0, 0)) { total, shard in
            let resident = shard.resident
            return (total.0 + resident.bytes, total.1 + resident.chunks)
        }
    }

    /// Log bytes holding no resident chunk (see ``ChunkShard/wasteBytes``).
    var wasteBytes: Int { self.shards.reduce(0) { $0 + $1.wasteBytes } }

    var metadataBytes: Int { self.shards.reduce(0) { $0 + $1.metadataBytes } }

    /// Per owning domain, the bytes chunk sharing saved (see ``ChunkShard/savedBytesByOwner``).
    var savedBytesByOwner: [ObjectIdentifier: Int] {
        self.shards.reduce(into: [:]) { total, shard in total.merge(shard.savedBytesByOwner, uniquingKeysWith: +) }
    }

    /// The identity of `bytes` as the map records it.
    func identity(of bytes: UnsafeRawBufferPointer) -> ChunkIdentity {
        self.collidingIdentities ? ChunkIdentity(low: 0, high: 0, length: bytes.count) : ChunkIdentity(of: bytes)
    }
}
