/// A long xattr name prefix (`struct erofs_xattr_long_prefix`): a short prefix index plus an infix.
struct XattrPrefix: Sendable {
    /// Bit 7 of `e_name_index` marks a long prefix; the low bits index the prefix table.
    static let longPrefixFlag: UInt8 = 0x80

    let baseIndex: UInt8
    let infix: [UInt8]
    /// Whether names under this prefix are internal (base index 0, no namespace).
    var isHidden: Bool { self.baseIndex == 0 }
    /// Short prefix followed by the infix (`trusted.` + `erofs.fingerprint`).
    let fullPrefix: [UInt8]
}

extension Image {
    /// Loads the long xattr prefix table: `xattr_prefix_count` records at `xattr_prefix_start` × 4, each a
    /// 2-byte length then the record, padded to 4 bytes. Unless PLAIN_XATTR_PFX is set, the table lives in
    /// the metabox's data when there is a metabox, else in the packed inode's data when there is one; it is
    /// in the image itself otherwise (the kernel's `erofs_xattr_prefixes_init`).
    func loadXattrPrefixes() throws -> [XattrPrefix] {
        let count = self.superBlock.xattrPrefixCount
        guard count > 0 else { return [] }
        let plain = self.superBlock.compatFeatures.contains(.plainXattrPrefixes)
        let container: Inode? = plain ? nil : (self.metabox ?? self.packedInode)
        var position = UInt64(self.superBlock.xattrPrefixStart) << 2
        var prefixes: [XattrPrefix] = []
        for index in 0..<count {
            let lengthBytes = try self.prefixBytes(at: position, count: 2, in: container)
            let length = Int(lengthBytes.le16(0))
            guard length >= 1, length <= Self.maximumNameLength + 1 else {
                throw EROFSError.corrupted("long xattr prefix \(index) has length \(length)", at: position)
            }
            let record = try self.prefixBytes(at: position + 2, count: length, in: container)
            // Base index 0 names no namespace: mkfs.erofs stores internal xattrs (the ishare fingerprint,
            // `erofs.fingerprint.v1`) there, and the kernel hides them from listxattr.
            guard let short = record[0] == 0 ? [] : Self.shortPrefix(record[0]) else {
                throw EROFSError.corrupted(
                    "long xattr prefix \(index) has base index \(record[0])", at: position + 2)
            }
            let infix = Array(record[1...])
            prefixes.append(XattrPrefix(baseIndex: record[0], infix: infix, fullPrefix: short + infix))
            position += UInt64(2 + length + 3) & ~3
        }
        return prefixes
    }

    private func prefixBytes(at offset: UInt64, count: Int, in container: Inode?) throws -> [UInt8] {
        guard let container else {
            return try self.readMetadata(MetadataLocation(offset: offset, inMetabox: false), count: count)
        }
        let bytes = try self.readBytes(container, at: offset, count: count)
        guard bytes.count == count else {
            throw EROFSError.corrupted("long xattr prefix table runs past its inode's data", nid: container.nid)
        }
        return bytes
    }
}
