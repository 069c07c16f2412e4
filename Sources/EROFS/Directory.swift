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

    /// Reads directory block `index` of `directory`; pass one `context` to reads of several blocks of a
    /// compressed directory, so that a pcluster holding several of them is decoded once.
    func directoryBlock(_ directory: Inode, index: UInt64, context: ReadContext? = nil) throws -> DirectoryBlock {
        let blockSize = UInt64(self.superBlock.blockSize)
        let offset = index * blockSize
        let count = offset < directory.size ? Int(min(blockSize, directory.size - offset)) : 0
        let bytes = try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = try self.read(
                directory, at: offset, into: UnsafeMutableRawBufferPointer(buffer), context: context)
        }
        return try DirectoryBlock(bytes: bytes, index: index, nid: directory.nid)
    }

    /// All entries of `directory` in on-disk (byte-wise sorted) order, `.` and `..` included when stored.
    public func entries(of directory: Inode) throws -> [DirectoryEntry] {
        var all: [DirectoryEntry] = []
        try self.forEachEntry(of: directory) { all.append($0) }
        return all
    }

    /// Calls `body` for each entry of `directory`, block by block, without holding the whole listing.
    ///
    /// - Throws: ``EROFSError/Code/corrupted`` naming the directory's nid for a name that is empty, holds
    ///   `/` or NUL, or is `.` or `..` a second time.
    public func forEachEntry(of directory: Inode, _ body: (DirectoryEntry) throws -> Void) throws {
        guard directory.fileType == .directory else {
            throw EROFSError(.notADirectory, "not a directory", nid: directory.nid)
        }
        var dots = (dot: 0, dotDot: 0)
        let context = directory.layout.isCompressed ? ReadContext() : nil
        for index in 0..<self.directoryBlockCount(directory) {
            let block = try self.directoryBlock(directory, index: index, context: context)
            for position in 0..<block.count {
                let entry = try block.entry(position)
                if entry.name == [0x2E] { dots.dot += 1 }
                if entry.name == [0x2E, 0x2E] { dots.dotDot += 1 }
                guard dots.dot <= 1, dots.dotDot <= 1 else {
                    throw EROFSError.corrupted(
                        "directory block \(index) entry \(position): a second \"\(entry.nameString)\" entry",
                        nid: directory.nid)
                }
                try body(entry)
            }
        }
    }

    /// Finds `name` in `directory` by binary search: first over blocks by their first name, then within the
    /// block (names are sorted byte-wise, as `namei.c` relies on).
    public func lookup(_ name: [UInt8], in directory: Inode) throws -> DirectoryEntry? {
        guard directory.fileType == .directory else {
            throw EROFSError(.notADirectory, "not a directory", nid: directory.nid)
        }
        guard !name.isEmpty, name.count <= Self.maximumNameLength else { return nil }
        // Compare against names in place: a lookup materialises only the entry it returns.
        var low: UInt64 = 0
        var high = self.directoryBlockCount(directory)
        var candidate: DirectoryBlock? = nil
        let context = directory.layout.isCompressed && high > 1 ? ReadContext() : nil
        while low < high {
            let middle = low + (high - low) / 2
            let block = try self.directoryBlock(directory, index: middle, context: context)
            if try block.compare(name, withNameAt: 0) < 0 {
                high = middle
            } else {
                candidate = block
                low = middle + 1
            }
        }
        guard let block = candidate else { return nil }
        var lower = 0
        var upper = block.count
        while lower < upper {
            let middle = (lower + upper) / 2
            let order = try block.compare(name, withNameAt: middle)
            if order == 0 { return try block.entry(middle) }
            if order > 0 { lower = middle + 1 } else { upper = middle }
        }
        return nil
    }
}
