/// The type of a file, from the `S_IFMT` bits of its mode.
public enum FileType: String, Sendable, Hashable, Codable {
    case regular, directory, symlink, characterDevice, blockDevice, fifo, socket

    init?(mode: UInt16) {
        switch mode & 0o170000 {
        case 0o100000: self = .regular
        case 0o040000: self = .directory
        case 0o120000: self = .symlink
        case 0o020000: self = .characterDevice
        case 0o060000: self = .blockDevice
        case 0o010000: self = .fifo
        case 0o140000: self = .socket
        default: return nil
        }
    }

    /// The `EROFS_FT_*` value a directory entry records for this type.
    var direntType: UInt8 {
        switch self {
        case .regular: 1
        case .directory: 2
        case .characterDevice: 3
        case .blockDevice: 4
        case .fifo: 5
        case .socket: 6
        case .symlink: 7
        }
    }
}

/// How an inode's data is laid out (bits 1–3 of `i_format`).
public enum DataLayout: UInt8, Sendable, Hashable, Codable, CustomStringConvertible {
    /// Consecutive blocks from a start block.
    case flatPlain = 0
    /// Compressed, full (8-byte) lcluster indexes.
    case compressedFull = 1
    /// Consecutive blocks, the tail inline after the inode.
    case flatInline = 2
    /// Compressed, compact (2/4-byte packed) lcluster indexes.
    case compressedCompact = 3
    /// Fixed-size chunks, each a run of blocks on the primary or an extra device, or a hole.
    case chunkBased = 4

    /// The kernel's name for the layout (`EROFS_INODE_*`).
    public var description: String {
        switch self {
        case .flatPlain: "FLAT_PLAIN"
        case .compressedFull: "COMPRESSED_FULL"
        case .flatInline: "FLAT_INLINE"
        case .compressedCompact: "COMPRESSED_COMPACT"
        case .chunkBased: "CHUNK_BASED"
        }
    }

    /// Whether the data is compressed.
    public var isCompressed: Bool { self == .compressedFull || self == .compressedCompact }
}

/// Where an inode record lives: in the metadata area of the image, or in the metabox inode's data.
struct MetadataLocation: Sendable, Hashable {
    var offset: UInt64
    var inMetabox: Bool

    func advanced(by count: Int) -> MetadataLocation {
        MetadataLocation(offset: self.offset &+ UInt64(count), inMetabox: self.inMetabox)
    }
}

/// One inode of an image: its attributes and what the reader needs to find its data and xattrs.
public struct Inode: Sendable, Hashable {
    /// Node number: the inode's address in 32-byte slots (bit 63 set for inodes in the metabox).
    public let nid: UInt64
    public let fileType: FileType
    /// The full `st_mode` (type and permission bits).
    public let mode: UInt16
    public let uid: UInt32
    public let gid: UInt32
    public let linkCount: UInt32
    /// Size of the file's data in bytes (the target length for a symlink).
    public let size: UInt64
    /// Modification time, seconds since the UNIX epoch.
    public let mtime: Int64
    public let mtimeNanoseconds: UInt32
    public let layout: DataLayout
    /// Whether the on-disk record is the 64-byte extended form.
    public let isExtended: Bool
    /// Raw `i_u.rdev` for device files (new encoding), 0 otherwise.
    public let rawDevice: UInt32
    /// Value of the ishare fingerprint xattr (sha256 of the content, as mkfs writes it), when the image
    /// has ISHARE_XATTRS and the inode carries one.
    public internal(set) var fingerprint: [UInt8]?

    let location: MetadataLocation
    let recordSize: Int
    let xattrSize: Int
    /// `startblk` for flat layouts; nil for EROFS_NULL_ADDR.
    let startBlock: UInt64?
    /// `i_u` for chunk-based (chunk format) and compressed (`blocks_lo`) inodes.
    let rawU: UInt32
    /// For directories: `.` is omitted from the dirents.
    let dotOmitted: Bool

    /// The permission bits (`mode & 0o7777`).
    public var permissions: UInt16 { self.mode & 0o7777 }
    /// Device major number (`new_decode_dev`).
    public var deviceMajor: UInt32 { (self.rawDevice & 0xFFF00) >> 8 }
    /// Device minor number (`new_decode_dev`).
    public var deviceMinor: UInt32 { (self.rawDevice & 0xFF) | ((self.rawDevice >> 12) & 0xFFF00) }

    /// Where the bytes after the inode record and its inline xattrs start (inline data, chunk indexes).
    var payloadLocation: MetadataLocation { self.location.advanced(by: self.recordSize + self.xattrSize) }
}
