/// What a resident chunk is found by in the chunk store: its identity, scoped to one domain, and, for a
/// chunk whose bytes differ from a resident chunk of the same identity (a hash collision, or a crafted
/// image), to its place in the one shared file that holds it.
struct ChunkKey: Hashable, Sendable, SlotIndexKey {
    var low: UInt64
    var high: UInt64
    var length: UInt32
    /// The domain's number (`DomainCounters.chunkScope`); chunks of different domains never meet.
    var domain: UInt32
    /// Zero for a chunk shared in its domain; for one kept apart, the shared file's id and the chunk's
    /// offset in it.
    var privateFile: UInt64
    var privateOffset: UInt64

    init(_ reference: ChunkReference, domain: UInt32) {
        self.low = reference.low
        self.high = reference.high
        self.length = reference.length
        self.domain = domain
        self.privateFile = 0
        self.privateOffset = 0
    }

    /// The key of a chunk kept apart: at `offset` of shared file `file`.
    func keptApart(file: UInt64, offset: UInt64) -> ChunkKey {
        var key = self
        key.privateFile = file
        key.privateOffset = offset
        return key
    }

    /// The identity is already a hash: fold in the scope and mix once more.
    var mixedHash: UInt64 {
        let scoped =
            self.low ^ (UInt64(self.domain) &* 0x9E37_79B9_7F4A_7C15)
            ^ ((self.privateFile ^ self.privateOffset.byteSwapped) &* 0xC2B2_AE3D_27D4_EB4F)
        return scoped ^ (scoped >> 29)
    }

    static let empty = ChunkKey(ChunkReference(start: 0, length: 0, low: 0, high: 0), domain: 0)
}

/// One chunk of a file's chunk map: where it lies in its window and the identity of its bytes. 24 bytes for
/// ~4 KiB of content (0.6 %).
struct ChunkReference: Sendable, Hashable {
    /// Offset of the chunk in its window.
    var start: UInt32
    var length: UInt32
    var low: UInt64
    var high: UInt64

    init(start: UInt32, length: UInt32, low: UInt64, high: UInt64) {
        self.start = start
        self.length = length
        self.low = low
        self.high = high
    }

    init(start: Int, identity: ChunkIdentity) {
        self.init(start: UInt32(start), length: UInt32(identity.length), low: identity.low, high: identity.high)
    }
}
