extension Image {
    /// Maps `position` of a COMPRESSED_FULL inode with encoded extent records (`z_erofs_map_blocks_ext`):
    /// 4- and 8-byte records hold one record per lcluster (4-byte ones share a 64-bit base address and
    /// accumulate lengths); 16- and 32-byte records hold their own logical start and are binary-searched.
    func encodedExtent(
        of inode: Inode, info: CompressionInfo, count: UInt64, containing position: UInt64
    ) throws -> CompressedExtent {
        let recordSize = UInt64(EncodedExtentRecord.recordSize(info.advise))
        let payload = inode.payloadLocation
        let headerEnd = ((payload.offset + 7) & ~7) + UInt64(MapHeaderRecord.size)
        var cursor = (headerEnd + recordSize - 1) / recordSize * recordSize
        let clusterSize = UInt64(1) << UInt64(info.logicalClusterBits)
        func record(at offset: UInt64, _ size: Int) throws -> [UInt8] {
            try self.readMetadata(MetadataLocation(offset: offset, inMetabox: payload.inMetabox), count: size)
        }

        var logicalEnd = inode.size
        var logicalStart: UInt64
        var encodedLength: UInt32 = 0
        var physical: UInt64 = 0
        let isLast: Bool
        if recordSize <= 8 {
            var base: UInt64? = nil
            if recordSize == 4 {
                base = try record(at: cursor, 8).le64(0)
                cursor += 8
                logicalStart = 0
            } else {
                logicalStart = position / clusterSize * clusterSize
                cursor += (logicalStart / clusterSize) * recordSize
            }
            // One record per lcluster up to the position's (a linear scan from 0 for 4-byte records, as the
            // kernel does; their addresses are cumulative), read in one piece rather than one read each.
            let wanted = (position - logicalStart) / clusterSize + 1
            let (span, overflow) = wanted.multipliedReportingOverflow(by: recordSize)
            guard !overflow, span <= UInt64(Int32.max) else {
                throw EROFSError.corrupted("encoded extent records for offset \(position) overflow", nid: inode.nid)
            }
            let records = try record(at: cursor, Int(span))
            var offset = 0
            while logicalStart <= position {
                encodedLength = records.le32(offset)
                if let current = base {
                    physical = current
                    base = current &+ UInt64(encodedLength & EncodedExtentRecord.lengthMask)
                } else {
                    physical = UInt64(records.le32(offset + 4))
                }
                offset += Int(recordSize)
                logicalStart += clusterSize
            }
            isLast = logicalStart >= (inode.size + clusterSize - 1) / clusterSize * clusterSize
            logicalEnd = min(logicalStart, logicalEnd)
            logicalStart -= clusterSize
        } else {
            logicalStart = logicalEnd
            var low: UInt64 = 0
            var high = count
            while low < high {
                let middle = low + (high - low) / 2
                let bytes = try record(at: cursor + middle * recordSize, Int(recordSize))
                var start = UInt64(bytes.le32(12))
                if recordSize > 16 { start |= UInt64(bytes.le32(16)) << 32 }
                if start > position {
                    high = middle
                    guard start <= logicalEnd else {
                        throw EROFSError.corrupted("encoded extents out of order", nid: inode.nid)
                    }
                    logicalEnd = start
                } else {
                    low = middle + 1
                    if position == start { high = min(low + 1, high) }
                    logicalStart = start
                    encodedLength = bytes.le32(0)
                    physical = UInt64(bytes.le32(4)) | UInt64(bytes.le32(8)) << 32
                }
            }
            isLast = low >= count
        }
        guard logicalStart < logicalEnd, logicalStart <= position, position < logicalEnd else {
            throw EROFSError.corrupted("no encoded extent covers offset \(position)", nid: inode.nid)
        }
        let length = logicalEnd - logicalStart
        if isLast && info.advise.contains(.fragmentPcluster) {
            // The tail is a fragment: its offset in the packed inode is kept in plen (and pstart_lo).
            let offset = UInt64(encodedLength) | (recordSize > 4 ? physical << 32 : 0)
            return CompressedExtent(
                logicalOffset: logicalStart, length: length, storage: .fragment(offset: offset), format: .shifted,
                partialReference: false)
        }
        let byteCount = encodedLength & EncodedExtentRecord.lengthMask
        guard byteCount != 0 else {
            return CompressedExtent(
                logicalOffset: logicalStart, length: length, storage: .hole, format: .shifted, partialReference: false)
        }
        let formatCode = encodedLength >> EncodedExtentRecord.formatShift
        let format: PclusterFormat
        if formatCode == 0 {
            let blockMask = UInt64(self.superBlock.blockSize - 1)
            let aligned = (physical | UInt64(byteCount)) & blockMask == 0
            format = info.advise.contains(.interlacedPcluster) && aligned ? .interlaced : .shifted
        } else {
            guard let algorithm = CompressionAlgorithm(rawValue: UInt8(formatCode - 1)),
                self.compression.algorithms.contains(algorithm)
            else {
                throw EROFSError.corrupted("encoded extent uses unknown algorithm \(formatCode - 1)", nid: inode.nid)
            }
            format = .compressed(algorithm)
        }
        let (end, overflow) = physical.addingReportingOverflow(UInt64(byteCount))
        guard byteCount <= UInt32(CompressionConfiguration.maximumPclusterBytes),
            length <= UInt64(CompressionConfiguration.maximumDecodedBytes), !overflow, end <= self.source.size
        else {
            throw EROFSError.corrupted(
                "encoded extent of \(byteCount) bytes at \(physical) decoding to \(length)", nid: inode.nid)
        }
        return CompressedExtent(
            logicalOffset: logicalStart, length: length, storage: .blocks(offset: physical, byteCount: Int(byteCount)),
            format: format, partialReference: encodedLength & EncodedExtentRecord.partialReference != 0)
    }
}
