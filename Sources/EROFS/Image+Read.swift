extension Image {
    /// Reads `inode`'s data from byte `offset` into `buffer`, and returns how many bytes were read:
    /// `min(buffer.count, size - offset)`, or 0 at or past the end of the file.
    ///
    /// Uncompressed bytes go straight from the device into `buffer`; holes are zero-filled. Compressed
    /// extents are decoded through `context`'s scratch; pass the same context to sequential reads of a file so
    /// that each pcluster is decoded once (without one, a temporary context is used).
    /// - Throws: `EROFSError` for a corrupt mapping or stream, a missing extra device, or an I/O failure.
    public func read(
        _ inode: Inode, at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer, context: ReadContext? = nil
    ) throws -> Int {
        try self.read(inode, at: offset, into: buffer, context: context, cached: true)
    }

    /// ``read(_:at:into:context:)``; with `cached`, reads of the metabox and packed inodes go through their
    /// decoded blocks (``DecodedBlocks``), which read with `cached: false`.
    func read(
        _ inode: Inode, at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer, context: ReadContext?,
        cached: Bool
    ) throws -> Int {
        if cached, inode.nid == self.metabox?.nid {
            return try self.metaboxBlocks.read(inode, of: self, at: offset, into: buffer)
        }
        if cached, inode.nid == self.packedInode?.nid {
            return try self.packedBlocks.read(inode, of: self, at: offset, into: buffer)
        }
        guard offset < inode.size, buffer.count > 0 else { return 0 }
        let total = Int(min(UInt64(buffer.count), inode.size - offset))
        if inode.layout.isCompressed {
            try self.readCompressed(inode, at: offset, into: buffer, total: total, context: context ?? ReadContext())
            return total
        }
        var done = 0
        while done < total {
            let position = offset + UInt64(done)
            let extent = try self.extent(of: inode, containing: position)
            guard extent.contains(position) else {
                throw EROFSError.corrupted("mapping does not cover offset \(position)", nid: inode.nid)
            }
            let within = position - extent.logicalOffset
            let count = Int(min(UInt64(total - done), extent.length - within))
            let destination = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + count])
            switch extent.storage {
            case .hole:
                destination.initializeMemory(as: UInt8.self, repeating: 0)
            case .device(let source, let start, _):
                try source.read(into: destination, at: start + within)
            case .metadata(let location):
                let bytes = try self.readMetadata(location.advanced(by: Int(within)), count: count)
                destination.copyBytes(from: bytes)
            }
            done += count
        }
        return total
    }

    /// Reads `count` bytes of `inode`'s data from `offset` into a new array (for small reads: directory
    /// blocks, symlink targets). Returns fewer bytes at the end of the file.
    public func readBytes(_ inode: Inode, at offset: UInt64 = 0, count: Int) throws -> [UInt8] {
        let available = offset < inode.size ? Int(min(UInt64(count), inode.size - offset)) : 0
        guard available > 0 else { return [] }
        return try [UInt8](unsafeUninitializedCapacity: available) { buffer, initialized in
            initialized = try self.read(inode, at: offset, into: UnsafeMutableRawBufferPointer(buffer))
        }
    }

    /// Longest symlink target accepted (`PATH_MAX` including the NUL).
    public static let maximumSymlinkLength = 4095

    /// The target of a symlink, as raw bytes.
    public func symlinkTarget(_ inode: Inode) throws -> [UInt8] {
        guard inode.fileType == .symlink else {
            throw EROFSError(.notASymlink, "not a symlink", nid: inode.nid)
        }
        guard inode.size <= UInt64(Self.maximumSymlinkLength) else {
            throw EROFSError.corrupted("symlink target of \(inode.size) bytes exceeds PATH_MAX", nid: inode.nid)
        }
        return try self.readBytes(inode, count: Int(inode.size))
    }
}

extension Image {
    /// Reads `range` of `inode`'s data in order, one `buffer`-sized chunk at a time, and hands each chunk to
    /// `body` (the loop every whole-file reader needs: extract, cat, checks, hashing). Stops at the end of the
    /// file; returns the bytes read.
    @discardableResult
    public func readSequentially(
        _ inode: Inode, range: Range<UInt64>? = nil, using buffer: UnsafeMutableRawBufferPointer,
        context: ReadContext, _ body: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> UInt64 {
        let range = range ?? 0..<inode.size
        var position = range.lowerBound
        while position < range.upperBound {
            let want = Int(min(UInt64(buffer.count), range.upperBound - position))
            let count = try self.read(
                inode, at: position, into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<want]), context: context)
            guard count > 0 else { break }
            try body(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            position += UInt64(count)
        }
        return position - range.lowerBound
    }
}
