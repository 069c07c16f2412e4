/// Chunk format bits in `struct erofs_inode_chunk_info` (the `i_u` of a chunk-based inode).
enum ChunkFormat {
    static let blockBitsMask: UInt16 = 0x001F
    /// 8-byte `struct erofs_inode_chunk_index` entries instead of a 4-byte block map.
    static let indexes: UInt16 = 0x0020
    /// 48-bit chunk start blocks (`startblk_hi` in the index).
    static let address48: UInt16 = 0x0040
    static let all: UInt16 = 0x007F
}

/// On-disk `struct erofs_inode_chunk_index` (8 bytes): `startblk_hi`, `device_id`, `startblk_lo`.
struct ChunkIndexRecord: Sendable {
    static let size = 8
    var startBlockHigh: UInt16
    var deviceID: UInt16
    var startBlockLow: UInt32

    init(_ bytes: [UInt8], at offset: Int) {
        self.startBlockHigh = bytes.le16(offset)
        self.deviceID = bytes.le16(offset + 2)
        self.startBlockLow = bytes.le32(offset + 4)
    }
}

/// On-disk `struct erofs_deviceslot` (128 bytes): a tag (digest or path hint), block count, mapped address.
struct DeviceSlotRecord: Sendable {
    static let size = 128
    var tag: [UInt8]
    var blocks: UInt32
    var mappedBlockAddress: UInt32

    init(_ bytes: [UInt8]) {
        self.tag = Array(bytes[0..<64])
        self.blocks = bytes.le32(64)
        self.mappedBlockAddress = bytes.le32(68)
    }
}
