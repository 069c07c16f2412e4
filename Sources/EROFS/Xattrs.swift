/// One extended attribute of an inode.
public struct Xattr: Sendable, Hashable {
    /// The full name (`user.foo`, `security.capability`, `system.posix_acl_access`...) as bytes.
    public let name: [UInt8]
    /// The raw value; POSIX ACLs are returned as their on-disk blob.
    public let value: [UInt8]

    /// The name decoded as UTF-8, for display.
    public var nameString: String { String(decoding: self.name, as: UTF8.self) }
}

extension Image {
    /// Short xattr name prefixes by `e_name_index` (`EROFS_XATTR_INDEX_*`).
    static func shortPrefix(_ index: UInt8) -> [UInt8]? {
        switch index {
        case 1: Array("user.".utf8)
        case 2: Array("system.posix_acl_access".utf8)
        case 3: Array("system.posix_acl_default".utf8)
        case 4: Array("trusted.".utf8)
        case 5: Array("lustre.".utf8)
        case 6: Array("security.".utf8)
        default: nil
        }
    }

    /// All xattrs of `inode`: inline ones first, then shared ones, as the kernel lists them.
    /// Entries with an unknown name index are skipped, and so are internal ones under a long prefix without
    /// a namespace (the ishare fingerprint), as the kernel does.
    public func xattrs(of inode: Inode) throws -> [Xattr] {
        var result: [Xattr] = []
        try self.forEachXattr(of: inode, includingHidden: false) { result.append($0) }
        return result
    }

    func forEachXattr(of inode: Inode, includingHidden: Bool, _ body: (Xattr) throws -> Void) throws {
        guard inode.xattrSize > 0 else { return }
        guard inode.xattrSize >= XattrBodyHeaderRecord.size else {
            throw EROFSError.corrupted("xattr body of \(inode.xattrSize) bytes too short", nid: inode.nid)
        }
        let start = inode.location.advanced(by: inode.recordSize)
        let body_ = try self.readMetadata(start, count: inode.xattrSize)
        let header = XattrBodyHeaderRecord(body_)
        let sharedEnd = XattrBodyHeaderRecord.size + 4 * Int(header.sharedCount)
        guard sharedEnd <= body_.count else {
            throw EROFSError.corrupted(
                "\(header.sharedCount) shared xattrs overflow the \(body_.count)-byte xattr body", nid: inode.nid)
        }
        var position = sharedEnd
        while position < body_.count {
            guard body_.count - position >= XattrEntryRecord.size else {
                throw EROFSError.corrupted("truncated inline xattr entry", nid: inode.nid)
            }
            let entry = XattrEntryRecord(body_, at: position)
            guard entry.entrySize <= body_.count - position else {
                throw EROFSError.corrupted(
                    "inline xattr entry of \(entry.entrySize) bytes overflows the xattr body", nid: inode.nid)
            }
            let nameStart = position + XattrEntryRecord.size
            let valueStart = nameStart + Int(entry.nameLength)
            if let xattr = try self.makeXattr(
                entry, suffix: body_[nameStart..<valueStart],
                value: body_[valueStart..<valueStart + Int(entry.valueSize)], nid: inode.nid,
                includingHidden: includingHidden)
            {
                try body(xattr)
            }
            position += entry.entrySize
        }
        for index in 0..<Int(header.sharedCount) {
            let id = body_.le32(XattrBodyHeaderRecord.size + 4 * index)
            if let xattr = try self.sharedXattr(id: id, nid: inode.nid, includingHidden: includingHidden) {
                try body(xattr)
            }
        }
    }

    /// Reads shared xattr `id`: one entry at byte `xattr_blkaddr` × block size + 4 × id, of the image or, with
    /// SHARED_EA_IN_METABOX, of the metabox's data.
    private func sharedXattr(id: UInt32, nid: UInt64, includingHidden: Bool) throws -> Xattr? {
        let inMetabox = self.superBlock.compatFeatures.contains(.sharedXattrsInMetabox)
        let base = self.superBlock.xattrBlockAddress << UInt64(self.superBlock.blockSizeBits)
        let location = MetadataLocation(offset: base + UInt64(id) * 4, inMetabox: inMetabox)
        let header = try self.readMetadata(location, count: XattrEntryRecord.size)
        let entry = XattrEntryRecord(header, at: 0)
        let rest = try self.readMetadata(
            location.advanced(by: XattrEntryRecord.size), count: Int(entry.nameLength) + Int(entry.valueSize))
        let nameLength = Int(entry.nameLength)
        return try self.makeXattr(
            entry, suffix: rest[0..<nameLength], value: rest[nameLength...], nid: nid, includingHidden: includingHidden)
    }

    /// Builds the full name from the entry's name index (short or long prefix) and its stored suffix; nil
    /// for entries the kernel does not list.
    private func makeXattr(
        _ entry: XattrEntryRecord, suffix: ArraySlice<UInt8>, value: ArraySlice<UInt8>, nid: UInt64,
        includingHidden: Bool
    ) throws -> Xattr? {
        let prefix: [UInt8]
        if entry.nameIndex & XattrPrefix.longPrefixFlag != 0 {
            let index = Int(entry.nameIndex & ~XattrPrefix.longPrefixFlag)
            guard index < self.xattrPrefixes.count else {
                throw EROFSError.corrupted(
                    "xattr refers to long prefix \(index) of \(self.xattrPrefixes.count)", nid: nid)
            }
            let longPrefix = self.xattrPrefixes[index]
            if longPrefix.isHidden && !includingHidden { return nil }
            prefix = longPrefix.fullPrefix
        } else {
            guard let short = Self.shortPrefix(entry.nameIndex) else { return nil }
            prefix = short
        }
        return Xattr(name: prefix + suffix, value: Array(value))
    }

    /// The ishare fingerprint of `inode`: the value of the xattr whose name is the long prefix the
    /// superblock's `ishare_xattr_prefix_id` selects, if it is 1 byte to one block long (as the kernel's
    /// `erofs_ishare_fill_inode` requires). Nil when the image has no ISHARE_XATTRS or the inode none.
    func fingerprint(of inode: Inode) throws -> [UInt8]? {
        guard let id = self.superBlock.ishareXattrPrefixID, id < self.xattrPrefixes.count else { return nil }
        let name = self.xattrPrefixes[id].fullPrefix
        var found: [UInt8]? = nil
        try self.forEachXattr(of: inode, includingHidden: true) { xattr in
            if found == nil, xattr.name == name { found = xattr.value }
        }
        guard let value = found, !value.isEmpty, value.count <= self.superBlock.blockSize else { return nil }
        return value
    }
}
