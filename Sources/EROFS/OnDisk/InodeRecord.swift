/// On-disk `struct erofs_inode_compact` (32 bytes) or `struct erofs_inode_extended` (64 bytes), little-endian.
///
/// Bit 0 of `i_format` selects the size; bits 1–3 the data layout; bit 4 is `EROFS_I_NLINK_1_BIT` for
/// non-directories (nlink is 1 and `i_nb` holds `startblk_hi`) or `EROFS_I_DOT_OMITTED_BIT` for directories.
struct InodeRecord: Sendable {
    static let compactSize = 32
    static let extendedSize = 64
    /// Bits of `i_format` defined by Linux 6.18 (`EROFS_I_ALL`).
    static let knownFormatBits: UInt16 = 0x1F

    var format: UInt16
    var xattrCount: UInt16
    var mode: UInt16
    /// `i_nb`: nlink, or `startblk_hi` / `blocks_hi` when `EROFS_I_NLINK_1_BIT` is set.
    var nb: UInt16
    var size: UInt64
    /// `i_u`: `startblk_lo`, `blocks_lo`, `rdev` or the chunk info.
    var u: UInt32
    var ino: UInt32
    var uid: UInt32
    var gid: UInt32
    /// Compact: seconds relative to the superblock epoch. Extended: absolute seconds.
    var mtime: UInt64
    var mtimeNanoseconds: UInt32?
    var nlink: UInt32?

    var isExtended: Bool { self.format & 1 == 1 }
    var recordSize: Int { self.isExtended ? Self.extendedSize : Self.compactSize }
    var layoutValue: UInt8 { UInt8((self.format >> 1) & 0x7) }
    var bit4: Bool { (self.format >> 4) & 1 == 1 }

    /// Parses the record; `bytes` holds at least 32 bytes, and 64 when the record is extended.
    init(_ bytes: [UInt8], nid: UInt64) throws {
        guard bytes.count >= Self.compactSize else {
            throw EROFSError.corrupted("short inode record", nid: nid)
        }
        self.format = bytes.le16(0x00)
        self.xattrCount = bytes.le16(0x02)
        self.mode = bytes.le16(0x04)
        self.nb = bytes.le16(0x06)
        if self.format & 1 == 1 {
            guard bytes.count >= Self.extendedSize else {
                throw EROFSError.corrupted("extended inode record runs past the end of the image", nid: nid)
            }
            self.size = bytes.le64(0x08)
            self.u = bytes.le32(0x10)
            self.ino = bytes.le32(0x14)
            self.uid = bytes.le32(0x18)
            self.gid = bytes.le32(0x1C)
            self.mtime = bytes.le64(0x20)
            self.mtimeNanoseconds = bytes.le32(0x28)
            self.nlink = bytes.le32(0x2C)
        } else {
            self.size = UInt64(bytes.le32(0x08))
            self.mtime = UInt64(bytes.le32(0x0C))
            self.u = bytes.le32(0x10)
            self.ino = bytes.le32(0x14)
            self.uid = UInt32(bytes.le16(0x18))
            self.gid = UInt32(bytes.le16(0x1A))
            self.mtimeNanoseconds = nil
            self.nlink = nil
        }
    }
}
