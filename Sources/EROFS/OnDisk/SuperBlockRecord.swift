/// On-disk `struct erofs_super_block`: 128 bytes at byte 1024, plus `sb_extslots` × 16 bytes, little-endian.
///
/// Field offsets follow `fs/erofs/erofs_fs.h` (Linux 6.18 with the 48-bit, metabox and ishare additions).
struct SuperBlockRecord: Sendable {
    static let offset: UInt64 = 1024
    static let baseSize = 128
    static let magicValue: UInt32 = 0xE0F5_E1E2

    var magic: UInt32
    var checksum: UInt32
    var featureCompat: UInt32
    var blockSizeBits: UInt8
    var extensionSlots: UInt8
    /// `rootnid_2b`, or `blocks_hi` when the 48-bit root nid is in use.
    var rootNid16: UInt16
    var inodeCount: UInt64
    var epoch: UInt64
    var fixedNanoseconds: UInt32
    var blocksLow: UInt32
    var metaBlockAddress: UInt32
    var xattrBlockAddress: UInt32
    var uuid: [UInt8]
    var volumeName: [UInt8]
    var featureIncompat: UInt32
    /// `available_compr_algs` with COMPR_CFGS, else `lz4_max_distance`.
    var compressionWord: UInt16
    var extraDevices: UInt16
    var deviceTableSlotOffset: UInt16
    var directoryBlockBits: UInt8
    var xattrPrefixCount: UInt8
    var xattrPrefixStart: UInt32
    var packedNid: UInt64
    var xattrFilterReserved: UInt8
    var ishareXattrPrefixID: UInt8
    var buildTime: UInt32
    var rootNid64: UInt64
    /// `metabox_nid`, in the first extension slot.
    var metaboxNid: UInt64?

    /// Parses the record from `bytes`, which start at byte 1024 of the image and hold at least 128 bytes.
    init(_ bytes: [UInt8]) throws {
        guard bytes.count >= Self.baseSize else {
            throw EROFSError(.notEROFS, "image too small for a superblock", byteOffset: Self.offset)
        }
        self.magic = bytes.le32(0x00)
        self.checksum = bytes.le32(0x04)
        self.featureCompat = bytes.le32(0x08)
        self.blockSizeBits = bytes[0x0C]
        self.extensionSlots = bytes[0x0D]
        self.rootNid16 = bytes.le16(0x0E)
        self.inodeCount = bytes.le64(0x10)
        self.epoch = bytes.le64(0x18)
        self.fixedNanoseconds = bytes.le32(0x20)
        self.blocksLow = bytes.le32(0x24)
        self.metaBlockAddress = bytes.le32(0x28)
        self.xattrBlockAddress = bytes.le32(0x2C)
        self.uuid = Array(bytes[0x30..<0x40])
        self.volumeName = Array(bytes[0x40..<0x50])
        self.featureIncompat = bytes.le32(0x50)
        self.compressionWord = bytes.le16(0x54)
        self.extraDevices = bytes.le16(0x56)
        self.deviceTableSlotOffset = bytes.le16(0x58)
        self.directoryBlockBits = bytes[0x5A]
        self.xattrPrefixCount = bytes[0x5B]
        self.xattrPrefixStart = bytes.le32(0x5C)
        self.packedNid = bytes.le64(0x60)
        self.xattrFilterReserved = bytes[0x68]
        self.ishareXattrPrefixID = bytes[0x69]
        self.buildTime = bytes.le32(0x6C)
        self.rootNid64 = bytes.le64(0x70)
        if self.extensionSlots >= 1, bytes.count >= Self.baseSize + 16 {
            self.metaboxNid = bytes.le64(0x80)
        } else {
            self.metaboxNid = nil
        }
    }
}
