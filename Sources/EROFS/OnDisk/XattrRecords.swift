/// On-disk `struct erofs_xattr_ibody_header` (12 bytes) followed by `h_shared_count` 4-byte shared xattr ids.
struct XattrBodyHeaderRecord: Sendable {
    static let size = 12
    var nameFilter: UInt32
    var sharedCount: UInt8

    init(_ bytes: [UInt8]) {
        self.nameFilter = bytes.le32(0)
        self.sharedCount = bytes[4]
    }

    /// Bytes of the inline xattr region for `i_xattr_icount` (`erofs_xattr_ibody_size`).
    static func bodySize(xattrCount: UInt16) -> Int {
        xattrCount == 0 ? 0 : Self.size + 4 * (Int(xattrCount) - 1)
    }
}

/// On-disk `struct erofs_xattr_entry` (4 bytes), followed by the name and value, padded to 4 bytes.
struct XattrEntryRecord: Sendable {
    static let size = 4
    var nameLength: UInt8
    var nameIndex: UInt8
    var valueSize: UInt16

    init(_ bytes: [UInt8], at offset: Int) {
        self.nameLength = bytes[offset]
        self.nameIndex = bytes[offset + 1]
        self.valueSize = bytes.le16(offset + 2)
    }

    /// Size including name, value and padding (`erofs_xattr_entry_size`).
    var entrySize: Int { (Self.size + Int(self.nameLength) + Int(self.valueSize) + 3) & ~3 }
}
