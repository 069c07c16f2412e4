/// An opened EROFS image: the validated superblock plus the sources to read it from.
///
/// Opening reads the superblock (and, when present, the device table, the metabox and packed inodes and the
/// long xattr prefixes) and nothing else, so it is fast on any image size. All later reads are positional;
/// an `Image` is an immutable value (its sources are shared references) and may be used from any thread.
public struct Image: Sendable {
    /// The validated superblock.
    public let superBlock: SuperBlock
    let source: any ImageSource
    /// Extra devices in device-table order (device id 1 is index 0).
    let devices: [ExtraDevice]
    /// Compression settings from the configuration records after the superblock.
    public let compression: CompressionConfiguration
    /// Distinguishes this opened image in caches keyed by nid (a ``ReadContext`` may serve several images).
    let identity: ImageIdentity
    /// Decoded blocks of the metabox and packed inodes, which inode, xattr, directory and fragment reads
    /// keep coming back to.
    let metaboxBlocks: DecodedBlocks
    let packedBlocks: DecodedBlocks
    private(set) var xattrPrefixes: [XattrPrefix] = []
    private(set) var metabox: Inode?
    private(set) var packedInode: Inode?

    /// Opens the image in `source`.
    ///
    /// - Parameters:
    ///   - source: the primary device.
    ///   - devices: the extra devices (blobs) in device-table order; chunk-based files pointing into a
    ///     device that is not given fail with ``EROFSError/Code/missingDevice`` when read.
    ///   - decodedBlockLimit: how many decoded blocks of the metabox and of the packed inode to keep (each).
    /// - Throws: `EROFSError` when the superblock is not EROFS, sets unknown incompatible features, fails
    ///   its checksum, or a structure read at open is corrupt.
    public init(
        source: any ImageSource, devices: [any ImageSource] = [], decodedBlockLimit: Int = Self.defaultDecodedBlockLimit
    ) throws {
        let minimumSize = SuperBlockRecord.offset + UInt64(SuperBlockRecord.baseSize)
        guard source.size >= minimumSize else {
            throw EROFSError(.notEROFS, "not an EROFS image (\(source.size) bytes, too small for a superblock)")
        }
        let superBlockBytes = try source.readBytes(
            at: SuperBlockRecord.offset, count: Int(min(source.size - SuperBlockRecord.offset, 256)))
        let record = try SuperBlockRecord(superBlockBytes)
        let superBlock = try SuperBlock(record: record, imageSize: source.size)
        // A file shorter than the blocks the superblock counts is truncated: refuse it whole rather than
        // fail (or worse, misread) the files whose blocks are missing.
        let (expected, overflow) = superBlock.blockCount.multipliedReportingOverflow(by: UInt64(superBlock.blockSize))
        guard !overflow, expected <= source.size else {
            throw EROFSError.corrupted(
                "image is truncated: \(source.size) bytes, the superblock counts \(superBlock.blockCount) blocks "
                    + "(\(expected) bytes)")
        }
        if superBlock.compatFeatures.contains(.superBlockChecksum) {
            try Self.verifyChecksum(source: source, blockSize: superBlock.blockSize, expected: record.checksum)
        }
        self.superBlock = superBlock
        self.source = source
        self.identity = ImageIdentity()
        self.metaboxBlocks = DecodedBlocks(capacity: decodedBlockLimit)
        self.packedBlocks = DecodedBlocks(capacity: decodedBlockLimit)
        self.devices = try Self.loadDeviceTable(source: source, superBlock: superBlock, given: devices)
        self.compression = try Self.loadCompressionConfiguration(
            source: source, superBlock: superBlock, superBlockSize: superBlock.recordSize)
        // Staged: the metabox must be known before inodes inside it (the packed inode may be one) can be
        // read, and the packed inode before the long xattr prefixes stored in it.
        if let nid = superBlock.metaboxNid { self.metabox = try self.inode(nid, readingFingerprint: false) }
        if let nid = superBlock.packedNid { self.packedInode = try self.inode(nid, readingFingerprint: false) }
        self.xattrPrefixes = try self.loadXattrPrefixes()
    }

    /// Opens the image file at `path`, and extra devices from `devicePaths` in device-table order.
    /// Errors about the image's content start with `path` (`IMG: not an EROFS image (…)`).
    public init(path: String, devicePaths: [String] = []) throws {
        let source = try FileImageSource(path: path)
        let devices = try devicePaths.map { try FileImageSource(path: $0) as any ImageSource }
        do {
            self = try Image(source: source, devices: devices)
        } catch var error as EROFSError where error.code != .ioFailure && error.code != .missingDevice {
            error.message = "\(path): \(error.message)"
            throw error
        }
    }

    /// Why the image's bytes may no longer be those it was opened with (its file or an extra device's was
    /// written to since), or nil. Images are immutable; one that changes must not be served as a mix.
    public func contentChange() -> String? {
        self.source.contentChange() ?? self.devices.lazy.compactMap { $0.source?.contentChange() }.first
    }

    /// The image file, when the image was opened from one.
    public var file: FileImageSource? { self.source as? FileImageSource }

    /// Decoded metabox and packed-inode blocks kept per inode by default (1 MiB each with 4 KiB blocks).
    public static let defaultDecodedBlockLimit = 256

    /// Bytes of decoded metabox and packed-inode blocks this image holds.
    public var decodedMetadataBytes: Int { self.metaboxBlocks.byteCount + self.packedBlocks.byteCount }

    /// The root directory.
    public func root() throws -> Inode {
        let inode = try self.inode(self.superBlock.rootNid)
        guard inode.fileType == .directory else {
            throw EROFSError(.corrupted, "root inode is not a directory", nid: inode.nid)
        }
        return inode
    }

    /// Verifies `sb_chksum`: crc32c over the superblock block from byte 1024, with the checksum field
    /// zeroed, seeded with ~0 and not inverted at the end (the kernel's `erofs_superblock_csum_verify`).
    private static func verifyChecksum(source: any ImageSource, blockSize: Int, expected: UInt32) throws {
        let length = blockSize > Int(SuperBlockRecord.offset) ? blockSize - Int(SuperBlockRecord.offset) : blockSize
        var bytes = try source.readBytes(at: SuperBlockRecord.offset, count: length)
        for index in 4..<8 { bytes[index] = 0 }
        let crc = CRC32C.update(~0, bytes[...])
        guard crc == expected else {
            throw EROFSError.corrupted(
                "superblock checksum 0x\(String(crc, radix: 16)) does not match stored 0x\(String(expected, radix: 16))",
                at: SuperBlockRecord.offset + 4)
        }
    }
}

/// A reference whose identity names one opened image.
final class ImageIdentity: Sendable {}
