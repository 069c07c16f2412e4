/// One directory block as read from the image: dirents at the start, names packed at the end. The header is
/// checked when the block is made; each entry is checked when it is used (`erofs_fill_dentries`).
struct DirectoryBlock {
    let bytes: [UInt8]
    let index: UInt64
    /// The directory's nid, for errors.
    let nid: UInt64
    /// Number of entries (the first entry's `nameoff` / 12).
    let count: Int
    private let firstNameOffset: Int

    init(bytes: [UInt8], index: UInt64, nid: UInt64) throws {
        guard bytes.count >= DirentRecord.size else {
            throw EROFSError.corrupted("directory block \(index) of \(bytes.count) bytes too short", nid: nid)
        }
        let firstNameOffset = Int(bytes.le16(8))
        guard firstNameOffset >= DirentRecord.size, firstNameOffset < bytes.count else {
            throw EROFSError.corrupted(
                "directory block \(index): first nameoff \(firstNameOffset) outside 12..<\(bytes.count)", nid: nid)
        }
        self.bytes = bytes
        self.index = index
        self.nid = nid
        self.firstNameOffset = firstNameOffset
        self.count = firstNameOffset / DirentRecord.size
    }

    /// Where entry `position`'s name is: up to the next entry's name, or for the last entry up to the first
    /// NUL or the end of the block. Throws when the range is empty, reversed, outside the block or too long.
    func nameRange(_ position: Int) throws -> Range<Int> {
        let start = Int(self.bytes.le16(position * DirentRecord.size + 8))
        let end: Int
        if position + 1 < self.count {
            end = Int(self.bytes.le16((position + 1) * DirentRecord.size + 8))
        } else {
            var stop = start
            while stop < self.bytes.count && self.bytes[stop] != 0 { stop += 1 }
            end = stop
        }
        guard start >= self.firstNameOffset, start < end, end <= self.bytes.count,
            end - start <= Image.maximumNameLength
        else {
            throw EROFSError.corrupted(
                "directory block \(self.index) entry \(position): name bytes \(start)..<\(end) invalid", nid: self.nid)
        }
        return start..<end
    }

    /// Entry `position`, validated.
    func entry(_ position: Int) throws -> DirectoryEntry {
        let record = DirentRecord(self.bytes, at: position * DirentRecord.size)
        guard record.fileType <= 7 else {
            throw EROFSError.corrupted(
                "directory block \(self.index) entry \(position): file type \(record.fileType)", nid: self.nid)
        }
        let range = try self.nameRange(position)
        // A name is one path component: a `/` or NUL in it would let a consumer that joins names into
        // paths (extract, listings) step outside the directory.
        guard !self.bytes[range].contains(where: { $0 == 0x2F || $0 == 0 }) else {
            throw EROFSError.corrupted(
                "directory block \(self.index) entry \(position): name contains \"/\" or NUL", nid: self.nid)
        }
        return DirectoryEntry(name: Array(self.bytes[range]), nid: record.nid, fileTypeCode: record.fileType)
    }

    /// Byte-wise comparison of `name` with entry `position`'s name: negative, zero or positive.
    func compare(_ name: [UInt8], withNameAt position: Int) throws -> Int {
        let range = try self.nameRange(position)
        let stored = self.bytes[range]
        for (left, right) in zip(name, stored) where left != right {
            return left < right ? -1 : 1
        }
        return name.count - stored.count
    }
}
