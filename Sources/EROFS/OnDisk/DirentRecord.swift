/// On-disk `struct erofs_dirent` (12 bytes, little-endian). Entries sit at the start of each directory
/// block, names (not NUL-terminated) at its end; the first entry's `nameoff` gives the entry count.
struct DirentRecord: Sendable {
    static let size = 12

    var nid: UInt64
    var nameOffset: UInt16
    var fileType: UInt8

    init(_ bytes: [UInt8], at offset: Int) {
        self.nid = bytes.le64(offset)
        self.nameOffset = bytes.le16(offset + 8)
        self.fileType = bytes[offset + 10]
    }
}
