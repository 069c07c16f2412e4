/// On-disk `struct z_erofs_map_header` (8 bytes), at the first 8-byte boundary after a compressed inode's
/// record and inline xattrs.
struct MapHeaderRecord: Sendable {
    static let size = 8
    /// Bit 7 of `h_clusterbits`: the whole file is in the packed inode (`Z_EROFS_FRAGMENT_INODE_BIT`).
    static let wholeFileFragmentBit: UInt8 = 0x80

    /// `h_fragmentoff` (low 32 bits of the fragment offset in the packed inode).
    var fragmentOffset: UInt32
    /// `h_idata_size`: encoded size of the ztailpacking inline pcluster.
    var inlineDataSize: UInt16
    var advise: UInt16
    /// Bits 0–3: HEAD1 algorithm; bits 4–7: HEAD2 algorithm.
    var algorithmType: UInt8
    /// Bits 0–2: logical cluster bits minus block bits; bit 7: whole file in the packed inode.
    var clusterBits: UInt8
    var raw: UInt64

    init(_ bytes: [UInt8]) {
        self.fragmentOffset = bytes.le32(0)
        self.inlineDataSize = bytes.le16(2)
        self.advise = bytes.le16(4)
        self.algorithmType = bytes[6]
        self.clusterBits = bytes[7]
        self.raw = bytes.le64(0)
    }
}

/// `h_advise` bits of the map header.
struct MapAdvise: OptionSet, Sendable {
    let rawValue: UInt16
    /// COMPRESSED_COMPACT: 2-byte packs are used.
    static let compacted2B = MapAdvise(rawValue: 0x0001)
    /// COMPRESSED_FULL: encoded extent records instead of lcluster indexes (same bit).
    static let encodedExtents = MapAdvise(rawValue: 0x0001)
    static let bigPcluster1 = MapAdvise(rawValue: 0x0002)
    static let bigPcluster2 = MapAdvise(rawValue: 0x0004)
    static let inlinePcluster = MapAdvise(rawValue: 0x0008)
    static let interlacedPcluster = MapAdvise(rawValue: 0x0010)
    static let fragmentPcluster = MapAdvise(rawValue: 0x0020)
}

/// Logical cluster types (`Z_EROFS_LCLUSTER_TYPE_*`).
enum LclusterType: UInt8, Sendable {
    /// Uncompressed (plain) pcluster head.
    case plain = 0
    /// Compressed head using the HEAD1 algorithm.
    case head1 = 1
    /// Continuation of the pcluster whose head is `delta[0]` lclusters back.
    case nonhead = 2
    /// Compressed head using the HEAD2 algorithm.
    case head2 = 3

    var isHead: Bool { self != .nonhead }
}

/// On-disk `struct z_erofs_lcluster_index` (8 bytes): the full (non-compact) lcluster index.
struct LclusterIndexRecord: Sendable {
    static let size = 8
    /// `Z_EROFS_LI_PARTIAL_REF`: this head's pcluster is shared and only partly referenced (dedupe).
    static let partialReference: UInt16 = 1 << 15
    /// `Z_EROFS_LI_D0_CBLKCNT`: delta[0] of the first NONHEAD holds the pcluster's block count.
    static let blockCountFlag: UInt16 = 1 << 11

    var advise: UInt16
    var clusterOffset: UInt16
    var blockAddress: UInt32
    var delta0: UInt16 { UInt16(truncatingIfNeeded: self.blockAddress) }
    var delta1: UInt16 { UInt16(truncatingIfNeeded: self.blockAddress >> 16) }
    var type: LclusterType { LclusterType(rawValue: UInt8(self.advise & 3))! }

    init(_ bytes: [UInt8], at offset: Int) {
        self.advise = bytes.le16(offset)
        self.clusterOffset = bytes.le16(offset + 2)
        self.blockAddress = bytes.le32(offset + 4)
    }
}

/// On-disk `struct z_erofs_extent` (encoded extents): `plen` (bits 0–20 length, bit 27 partial reference,
/// bits 28–31 algorithm + 1, 0 for plain), `pstart_lo`, `pstart_hi`, `lstart_lo`, `lstart_hi`. Records are
/// 4, 8, 16 or 32 bytes (`4 << h_advise bits 1–2`) and hold only a prefix of these fields.
enum EncodedExtentRecord {
    static let lengthMask: UInt32 = (1 << 21) - 1
    static let partialReference: UInt32 = 1 << 27
    static let formatShift: UInt32 = 28

    static func recordSize(_ advise: MapAdvise) -> Int { 4 << Int((advise.rawValue >> 1) & 3) }
}
