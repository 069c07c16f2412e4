/// One entry of a directory.
public struct DirectoryEntry: Sendable, Hashable {
    /// The name as stored: raw bytes, not NUL-terminated, not necessarily UTF-8.
    public let name: [UInt8]
    public let nid: UInt64
    /// The `EROFS_FT_*` type recorded in the entry (0 = unknown).
    public let fileTypeCode: UInt8

    /// The name decoded as UTF-8 (invalid sequences replaced), for display.
    public var nameString: String { String(decoding: self.name, as: UTF8.self) }
    /// Whether this is the `.` or `..` entry.
    public var isDotOrDotDot: Bool { self.name == [0x2E] || self.name == [0x2E, 0x2E] }
}

extension Image {
    /// Longest file name (`EROFS_NAME_LEN`).
    public static let maximumNameLength = 255

    /// Number of directory blocks of `directory`.
    func directoryBlockCount(_ directory: Inode) -> UInt64 {
        let blockSize = UInt64(self.superBlock.blockSize)
        return (directory.size + blockSize - 1) / blockSize
    }

    /// Parses directory block `index` of `directory` (`erofs_fill_dentries` checks).
    func directoryBlock(_ directory: Inode, index: UInt64) throws -> [DirectoryEntry] {
        let blockSize = UInt64(self.superBlock.blockSize)
        let bytes = try self.readBytes(directory, at: index * blockSize, count: Int(blockSize))
        let blockLength = bytes.count
        guard blockLength >= DirentRecord.size else {
            throw EROFSError.corrupted("directory block \(index) of \(blockLength) bytes too short", nid: directory.nid)
        }
        let firstNameOffset = Int(bytes.le16(8))
        guard firstNameOffset >= DirentRecord.size, firstNameOffset < blockLength else {
            throw EROFSError.corrupted(
                "directory block \(index): first nameoff \(firstNameOffset) outside 12..<\(blockLength)",
                nid: directory.nid)
        }
        let count = firstNameOffset / DirentRecord.size
        var entries: [DirectoryEntry] = []
        entries.reserveCapacity(count)
        var record = DirentRecord(bytes, at: 0)
        for position in 0..<count {
            let next = position + 1 < count ? DirentRecord(bytes, at: (position + 1) * DirentRecord.size) : nil
            let start = Int(record.nameOffset)
            let end: Int
            if let next {
                end = Int(next.nameOffset)
            } else {
                // The last name runs to the first NUL or the end of the block.
                var stop = start
                while stop < blockLength && bytes[stop] != 0 { stop += 1 }
                end = stop
            }
            guard start >= firstNameOffset, start < end, end <= blockLength,
                end - start <= Self.maximumNameLength
            else {
                throw EROFSError.corrupted(
                    "directory block \(index) entry \(position): name bytes \(start)..<\(end) invalid",
                    nid: directory.nid)
            }
            guard record.fileType <= 7 else {
                throw EROFSError.corrupted(
                    "directory block \(index) entry \(position): file type \(record.fileType)", nid: directory.nid)
            }
            entries.append(
                DirectoryEntry(name: Array(bytes[start..<end]), nid: record.nid, fileTypeCode: record.fileType))
            if let next { record = next }
        }
        return entries
    }

    /// All entries of `directory` in on-disk (byte-wise sorted) order, `.` and `..` included when stored.
    public func entries(of directory: Inode) throws -> [DirectoryEntry] {
        var all: [DirectoryEntry] = []
        try self.forEachEntry(of: directory) { all.append($0) }
        return all
    }

    /// Calls `body` for each entry of `directory`, block by block, without holding the whole listing.
    public func forEachEntry(of directory: Inode, _ body: (DirectoryEntry) throws -> Void) throws {
        guard directory.fileType == .directory else {
            throw EROFSError(.notADirectory, "not a directory", nid: directory.nid)
        }
        for index in 0..<self.directoryBlockCount(directory) {
            for entry in try self.directoryBlock(directory, index: index) { try body(entry) }
        }
    }

    /// Finds `name` in `directory` by binary search: first over blocks by their first name, then within the
    /// block (names are sorted byte-wise, as `namei.c` relies on).
    public func lookup(_ name: [UInt8], in directory: Inode) throws -> DirectoryEntry? {
        guard directory.fileType == .directory else {
            throw EROFSError(.notADirectory, "not a directory", nid: directory.nid)
        }
        guard !name.isEmpty, name.count <= Self.maximumNameLength else { return nil }
        var low: UInt64 = 0
        var high = self.directoryBlockCount(directory)
        var candidate: [DirectoryEntry]? = nil
        while low < high {
            let middle = low + (high - low) / 2
            let entries = try self.directoryBlock(directory, index: middle)
            guard let first = entries.first else { break }
            if name.lexicographicallyPrecedes(first.name) {
                high = middle
            } else {
                candidate = entries
                low = middle + 1
            }
        }
        guard let entries = candidate else { return nil }
        var lower = 0
        var upper = entries.count
        while lower < upper {
            let middle = (lower + upper) / 2
            let entry = entries[middle]
            if entry.name == name { return entry }
            if entry.name.lexicographicallyPrecedes(name) { lower = middle + 1 } else { upper = middle }
        }
        return nil
    }
}
