extension Image {
    /// Bit 63 of a nid: the inode lives in the metabox inode's data (`EROFS_DIRENT_NID_METABOX_BIT`).
    static let metaboxNidBit: UInt64 = 1 << 63

    /// Reads the inode `nid`.
    ///
    /// - Throws: `EROFSError` when the nid points outside the metadata, the record uses an unknown format or
    ///   data layout, or its mode is not a file type.
    public func inode(_ nid: UInt64) throws -> Inode {
        try self.inode(nid, readingFingerprint: true)
    }

    func inode(_ nid: UInt64, readingFingerprint: Bool) throws -> Inode {
        let location = try self.inodeLocation(nid)
        let limit = try self.metadataLimit(inMetabox: location.inMetabox)
        guard location.offset < limit, limit - location.offset >= UInt64(InodeRecord.compactSize) else {
            throw EROFSError.corrupted("inode lies past the end of the metadata", nid: nid, at: location.offset)
        }
        let count = Int(min(UInt64(InodeRecord.extendedSize), limit - location.offset))
        let record = try InodeRecord(try self.readMetadata(location, count: count), nid: nid)

        guard record.format & ~InodeRecord.knownFormatBits == 0 else {
            throw EROFSError(.unsupported, "unsupported i_format 0x\(String(record.format, radix: 16))", nid: nid)
        }
        guard let layout = DataLayout(rawValue: record.layoutValue) else {
            throw EROFSError(.unsupported, "unsupported data layout \(record.layoutValue)", nid: nid)
        }
        guard let fileType = FileType(mode: record.mode) else {
            throw EROFSError.corrupted("bogus i_mode 0o\(String(record.mode, radix: 8))", nid: nid)
        }
        guard record.size <= UInt64(Int64.max) else {
            throw EROFSError.corrupted("negative i_size", nid: nid)
        }

        let superBlock = self.superBlock
        let linkCount: UInt32
        let mtime: Int64
        let nanoseconds: UInt32
        var startHigh: UInt64 = 0
        var addressMask: UInt64 = (1 << 48) - 1
        if record.isExtended {
            linkCount = record.nlink ?? 0
            mtime = Int64(bitPattern: record.mtime)
            nanoseconds = record.mtimeNanoseconds ?? 0
            startHigh = UInt64(record.nb)
        } else {
            if fileType != .directory && record.bit4 {
                linkCount = 1
                startHigh = UInt64(record.nb)
            } else {
                linkCount = UInt32(record.nb)
                addressMask = (1 << 32) - 1
            }
            mtime = Int64(bitPattern: superBlock.epoch) &+ Int64(record.mtime)
            nanoseconds = superBlock.fixedNanoseconds
        }

        var startBlock: UInt64? = nil
        var rawDevice: UInt32 = 0
        switch fileType {
        case .regular, .directory, .symlink:
            let start = UInt64(record.u) | startHigh << 32
            // EROFS_NULL_ADDR (all ones within the address width) marks "no blocks".
            let isNull = (start ^ UInt64.max) & addressMask == 0
            startBlock = layout == .flatPlain && isNull ? nil : start
        case .characterDevice, .blockDevice:
            rawDevice = record.u
        case .fifo, .socket:
            break
        }
        if layout == .chunkBased {
            try self.checkChunkTable(
                format: UInt16(truncatingIfNeeded: record.u), size: record.size,
                payload: location.advanced(
                    by: record.recordSize + XattrBodyHeaderRecord.bodySize(xattrCount: record.xattrCount)),
                limit: limit, nid: nid)
        }

        var inode = Inode(
            nid: nid, fileType: fileType, mode: record.mode, uid: record.uid, gid: record.gid,
            linkCount: linkCount, size: record.size, mtime: mtime, mtimeNanoseconds: nanoseconds, layout: layout,
            isExtended: record.isExtended, rawDevice: rawDevice, fingerprint: nil, location: location,
            recordSize: record.recordSize,
            xattrSize: XattrBodyHeaderRecord.bodySize(xattrCount: record.xattrCount), startBlock: startBlock,
            rawU: record.u, dotOmitted: fileType == .directory && record.bit4)
        if readingFingerprint, superBlock.ishareXattrPrefixID != nil {
            inode.fingerprint = try self.fingerprint(of: inode)
        }
        return inode
    }

    /// Checks a chunk-based inode's format and that its whole chunk table lies inside the metadata, so a
    /// lying `i_size` cannot make a reader walk (or zero-fill) far beyond what the image describes.
    private func checkChunkTable(
        format: UInt16, size: UInt64, payload: MetadataLocation, limit: UInt64, nid: UInt64
    ) throws {
        guard format & ~ChunkFormat.all == 0 else {
            throw EROFSError(.unsupported, "unsupported chunk format 0x\(String(format, radix: 16))", nid: nid)
        }
        let chunkBits = UInt64(self.superBlock.blockSizeBits) + UInt64(format & ChunkFormat.blockBitsMask)
        guard chunkBits <= 47 else {
            throw EROFSError.corrupted("chunk size 2^\(chunkBits) too large", nid: nid)
        }
        let unit = UInt64(format & ChunkFormat.indexes != 0 ? ChunkIndexRecord.size : 4)
        let chunks = size == 0 ? 0 : (size - 1) >> chunkBits + 1
        let tableStart = (payload.offset + unit - 1) / unit * unit
        let (tableBytes, overflow1) = chunks.multipliedReportingOverflow(by: unit)
        let (tableEnd, overflow2) = tableStart.addingReportingOverflow(tableBytes)
        guard !overflow1, !overflow2, tableEnd <= limit else {
            throw EROFSError.corrupted(
                "chunk table for \(size) bytes (\(chunks) chunks) runs past the end of the metadata", nid: nid)
        }
    }

    /// Byte location of inode `nid` (`erofs_iloc`).
    func inodeLocation(_ nid: UInt64) throws -> MetadataLocation {
        let inMetabox = nid & Self.metaboxNidBit != 0
        let slot = nid & ~Self.metaboxNidBit
        guard slot <= UInt64.max >> 6 else {
            throw EROFSError.corrupted("nid out of range", nid: nid)
        }
        if inMetabox {
            guard self.metabox != nil else {
                throw EROFSError.corrupted("nid refers to the metabox but the image has none", nid: nid)
            }
            return MetadataLocation(offset: slot << 5, inMetabox: true)
        }
        let base = self.superBlock.metaBlockAddress << UInt64(self.superBlock.blockSizeBits)
        let (offset, overflow) = base.addingReportingOverflow(slot << 5)
        guard !overflow else { throw EROFSError.corrupted("nid out of range", nid: nid) }
        return MetadataLocation(offset: offset, inMetabox: false)
    }

    /// Size of the byte space metadata locations refer to.
    func metadataLimit(inMetabox: Bool) throws -> UInt64 {
        guard inMetabox else { return self.source.size }
        guard let metabox = self.metabox else {
            throw EROFSError.corrupted("metadata in the metabox, but the image has no metabox")
        }
        return metabox.size
    }

    /// Reads `count` bytes of metadata at `location`, from the image or from the metabox inode's data.
    func readMetadata(_ location: MetadataLocation, count: Int) throws -> [UInt8] {
        let limit = try self.metadataLimit(inMetabox: location.inMetabox)
        let (end, overflow) = location.offset.addingReportingOverflow(UInt64(count))
        guard count >= 0, !overflow, end <= limit else {
            throw EROFSError.corrupted("metadata read of \(count) bytes past the end", at: location.offset)
        }
        guard location.inMetabox, let metabox = self.metabox else {
            return try self.source.readBytes(at: location.offset, count: count)
        }
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { buffer in
            let read = try self.read(metabox, at: location.offset, into: buffer)
            guard read == count else {
                throw EROFSError.corrupted("metabox read came up short", nid: metabox.nid, at: location.offset)
            }
        }
        return bytes
    }
}
