extension Image {
    /// The extent of `inode`'s data that contains byte `position` (< size) of an uncompressed inode.
    func extent(of inode: Inode, containing position: UInt64) throws -> Extent {
        switch inode.layout {
        case .flatPlain:
            guard let start = inode.startBlock else {
                return Extent(logicalOffset: 0, length: inode.size, storage: .hole)
            }
            let storage = try self.deviceStorage(deviceID: 0, block: start, byteCount: inode.size, nid: inode.nid)
            return Extent(logicalOffset: 0, length: inode.size, storage: storage)
        case .flatInline:
            return try self.flatInlineExtent(of: inode, containing: position)
        case .chunkBased:
            return try self.chunkExtent(of: inode, containing: position)
        case .compressedFull, .compressedCompact:
            // Compressed inodes are mapped by compressedExtent(of:info:containing:); reaching here is a misroute.
            throw EROFSError(
                .unsupported, "\(inode.layout) is not a flat or chunk-based layout", nid: inode.nid)
        }
    }

    /// FLAT_INLINE: whole blocks from `startblk`, then the tail right after the inode and its xattrs.
    private func flatInlineExtent(of inode: Inode, containing position: UInt64) throws -> Extent {
        let blockSize = UInt64(self.superBlock.blockSize)
        let tailStart = (inode.size - 1) / blockSize * blockSize
        if position < tailStart {
            guard let start = inode.startBlock else {
                throw EROFSError.corrupted("inline file without a start block", nid: inode.nid)
            }
            let storage = try self.deviceStorage(deviceID: 0, block: start, byteCount: tailStart, nid: inode.nid)
            return Extent(logicalOffset: 0, length: tailStart, storage: storage)
        }
        let location = inode.payloadLocation
        let tailLength = inode.size - tailStart
        // The kernel requires the inline tail to sit in the inode's metadata block.
        guard location.offset % blockSize + tailLength <= blockSize else {
            throw EROFSError.corrupted(
                "inline tail of \(tailLength) bytes crosses a block boundary", nid: inode.nid, at: location.offset)
        }
        return Extent(logicalOffset: tailStart, length: tailLength, storage: .metadata(location))
    }

    /// CHUNK_BASED: a 4-byte block map or 8-byte chunk indexes after the inode, one entry per chunk.
    private func chunkExtent(of inode: Inode, containing position: UInt64) throws -> Extent {
        let format = UInt16(truncatingIfNeeded: inode.rawU)
        // The format and table bounds were checked when the inode was read.
        let chunkBits = UInt64(self.superBlock.blockSizeBits) + UInt64(format & ChunkFormat.blockBitsMask)
        let usesIndexes = format & ChunkFormat.indexes != 0
        let unit = UInt64(usesIndexes ? ChunkIndexRecord.size : 4)
        let chunkNumber = position >> chunkBits
        let payload = inode.payloadLocation
        let tableStart = (payload.offset + unit - 1) / unit * unit
        let (entryOffset, overflow) = tableStart.addingReportingOverflow(unit * chunkNumber)
        guard !overflow else { throw EROFSError.corrupted("chunk index out of range", nid: inode.nid) }
        let entry = try self.readMetadata(
            MetadataLocation(offset: entryOffset, inMetabox: payload.inMetabox), count: Int(unit))

        let logical = chunkNumber << chunkBits
        let length = min(UInt64(1) << chunkBits, inode.size - logical)
        let deviceID: Int
        let block: UInt64
        if usesIndexes {
            let record = ChunkIndexRecord(entry, at: 0)
            let mask: UInt64 = format & ChunkFormat.address48 != 0 ? (1 << 48) - 1 : (1 << 32) - 1
            let start = (UInt64(record.startBlockHigh) << 32 | UInt64(record.startBlockLow)) & mask
            if (start ^ UInt64.max) & mask == 0 {
                return Extent(logicalOffset: logical, length: length, storage: .hole)
            }
            deviceID = Int(record.deviceID) & self.deviceIDMask
            block = start
        } else {
            let start = entry.le32(0)
            if start == UInt32.max {
                return Extent(logicalOffset: logical, length: length, storage: .hole)
            }
            deviceID = 0
            block = UInt64(start)
        }
        let storage = try self.deviceStorage(deviceID: deviceID, block: block, byteCount: length, nid: inode.nid)
        return Extent(logicalOffset: logical, length: length, storage: storage)
    }

    /// Mask applied to chunk device ids: the next power of two above the device count, minus one.
    var deviceIDMask: Int {
        var mask = 1
        while mask < self.devices.count + 1 { mask <<= 1 }
        return mask - 1
    }
}
