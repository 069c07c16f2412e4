/// The validated superblock of an image: what `pageshare inspect` shows and what the reader relies on.
public struct SuperBlock: Sendable {
    /// Block size in bytes (512 B to 64 KiB).
    public let blockSize: Int
    public let blockSizeBits: Int
    public let compatFeatures: CompatFeatures
    public let incompatFeatures: IncompatFeatures
    /// Nid of the root directory (`rootnid_8b` when the 48-bit feature sets it, else `rootnid_2b`).
    public let rootNid: UInt64
    /// Number of valid inodes as recorded by mkfs.
    public let inodeCount: UInt64
    /// Total blocks of the primary device.
    public let blockCount: UInt64
    /// Base seconds for compact inode mtimes.
    public let epoch: UInt64
    /// Nanoseconds shared by all compact inodes.
    public let fixedNanoseconds: UInt32
    public let metaBlockAddress: UInt64
    public let xattrBlockAddress: UInt64
    public let uuid: [UInt8]
    /// Volume label (up to 16 bytes, trailing NULs dropped).
    public let volumeName: String
    /// Extra devices (blobs) that chunk-based files may point into.
    public let extraDeviceCount: Int
    let deviceTableSlotOffset: UInt64
    /// Bitmap of compression algorithms with configuration records (COMPR_CFGS), or 0.
    public let availableCompressionAlgorithms: UInt16
    /// LZ4 sliding window when COMPR_CFGS is not set (0 = 64 KiB default).
    public let lz4MaxDistance: UInt16
    public let xattrPrefixCount: Int
    let xattrPrefixStart: UInt32
    /// Nid of the packed inode (fragments, long xattr prefixes), when the image has one.
    public let packedNid: UInt64?
    /// Nid of the metabox inode, when the METABOX feature is set.
    public let metaboxNid: UInt64?
    /// Index of the long xattr prefix holding file fingerprints, when ISHARE_XATTRS is set.
    public let ishareXattrPrefixID: Int?
    /// The stored superblock checksum (verified at open when the feature bit is set).
    public let checksum: UInt32
    /// Bytes of the on-disk superblock: 128 plus 16 per extension slot.
    let recordSize: Int

    /// The volume UUID in the usual 8-4-4-4-12 form.
    public var uuidString: String {
        let hex = self.uuid.map { byte -> String in
            let text = String(byte, radix: 16)
            return text.count == 1 ? "0" + text : text
        }
        let groups = [0..<4, 4..<6, 6..<8, 8..<10, 10..<16].map { hex[$0].joined() }
        return groups.joined(separator: "-")
    }

    init(record: SuperBlockRecord, imageSize: UInt64) throws {
        let offset = SuperBlockRecord.offset
        guard record.magic == SuperBlockRecord.magicValue else {
            // Never echo the bytes found: the file may be anything (a key, a database).
            throw EROFSError(.notEROFS, "not an EROFS image (no EROFS magic at offset \(offset))")
        }
        guard (9...16).contains(record.blockSizeBits) else {
            throw EROFSError(
                .unsupported, "block size 2^\(record.blockSizeBits) outside 512 B ... 64 KiB", byteOffset: offset + 12)
        }
        let incompat = IncompatFeatures(rawValue: record.featureIncompat)
        let unknown = incompat.subtracting(.supported)
        guard unknown.isEmpty else {
            throw EROFSError(
                .unsupportedFeature,
                "unknown incompatible features: \(unknown.names.joined(separator: ", "))", byteOffset: offset + 0x50)
        }
        guard record.directoryBlockBits == 0 else {
            throw EROFSError(
                .unsupported, "directory block bits \(record.directoryBlockBits) (only 0 is defined)",
                byteOffset: offset + 0x5A)
        }
        let superBlockSize = SuperBlockRecord.baseSize + Int(record.extensionSlots) * 16
        guard superBlockSize <= 4096 - Int(offset) else {
            throw EROFSError.corrupted("sb_extslots \(record.extensionSlots) too large", at: offset + 0x0D)
        }
        self.blockSizeBits = Int(record.blockSizeBits)
        self.blockSize = 1 << self.blockSizeBits
        self.compatFeatures = CompatFeatures(rawValue: record.featureCompat)
        self.incompatFeatures = incompat
        let is48 = incompat.contains(.blockAddress48)
        if is48 && record.rootNid64 != 0 {
            self.rootNid = record.rootNid64
            self.blockCount = UInt64(record.rootNid16) << 32 | UInt64(record.blocksLow)
        } else {
            self.rootNid = UInt64(record.rootNid16)
            self.blockCount = UInt64(record.blocksLow)
        }
        self.inodeCount = record.inodeCount
        self.epoch = record.epoch
        self.fixedNanoseconds = record.fixedNanoseconds
        self.metaBlockAddress = UInt64(record.metaBlockAddress)
        self.xattrBlockAddress = UInt64(record.xattrBlockAddress)
        self.uuid = record.uuid
        let label = record.volumeName.prefix { $0 != 0 }
        self.volumeName = String(decoding: label, as: UTF8.self)
        self.extraDeviceCount = incompat.contains(.deviceTable) ? Int(record.extraDevices) : 0
        self.deviceTableSlotOffset = UInt64(record.deviceTableSlotOffset)
        if incompat.contains(.compressionConfigs) {
            self.availableCompressionAlgorithms = record.compressionWord
            self.lz4MaxDistance = 0
        } else {
            self.availableCompressionAlgorithms = 0
            self.lz4MaxDistance = record.compressionWord
        }
        self.xattrPrefixCount = Int(record.xattrPrefixCount)
        self.xattrPrefixStart = record.xattrPrefixStart
        self.packedNid = incompat.contains(.fragments) && record.packedNid != 0 ? record.packedNid : nil
        // The packed inode may hold the metabox's fragments, so it must not live in the metabox itself.
        guard (self.packedNid ?? 0) >> 63 == 0 else {
            throw EROFSError.corrupted("packed nid \(record.packedNid) points into the metabox", at: offset + 0x60)
        }
        if incompat.contains(.metabox) {
            guard let metaboxNid = record.metaboxNid else {
                throw EROFSError.corrupted("METABOX set but the superblock has no extension slot", at: offset)
            }
            guard metaboxNid >> 63 == 0 else {
                throw EROFSError.corrupted("metabox nid \(metaboxNid) points into the metabox", at: offset + 0x80)
            }
            self.metaboxNid = metaboxNid
        } else {
            self.metaboxNid = nil
        }
        if self.compatFeatures.contains(.ishareXattrs) {
            guard Int(record.ishareXattrPrefixID) < self.xattrPrefixCount else {
                throw EROFSError.corrupted(
                    "ishare xattr prefix id \(record.ishareXattrPrefixID) >= prefix count \(self.xattrPrefixCount)",
                    at: offset + 0x69)
            }
            self.ishareXattrPrefixID = Int(record.ishareXattrPrefixID)
        } else {
            self.ishareXattrPrefixID = nil
        }
        self.checksum = record.checksum
        self.recordSize = superBlockSize
        let (metaEnd, overflow) = self.metaBlockAddress.multipliedReportingOverflow(by: UInt64(self.blockSize))
        guard !overflow, metaEnd <= imageSize else {
            throw EROFSError.corrupted(
                "meta_blkaddr \(self.metaBlockAddress) lies past the end of the image (\(imageSize) bytes)",
                at: offset + 0x28)
        }
    }
}
