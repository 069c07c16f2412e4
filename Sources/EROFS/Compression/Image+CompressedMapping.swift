/// One decoded extent of a compressed file and where its encoded pcluster is.
struct CompressedExtent {
    enum Storage {
        /// A pcluster of `byteCount` bytes at byte `offset` of the primary device (block-aligned except for
        /// encoded extents).
        case blocks(offset: UInt64, byteCount: Int)
        /// No data: reads as zeros (an encoded extent without a pcluster).
        case hole
        /// The ztailpacking pcluster, inline in the metadata.
        case inline(MetadataLocation, byteCount: Int)
        /// Bytes in the packed inode starting at `offset` (the extent's first byte).
        case fragment(offset: UInt64)
    }

    /// File offset of the extent's first byte.
    var logicalOffset: UInt64
    /// Decoded length of the whole extent.
    var length: UInt64
    var storage: Storage
    var format: PclusterFormat
    /// The pcluster decodes to more than this extent (dedupe): decode partially.
    var partialReference: Bool
}

/// Where a position's extent begins, as found by walking the indexes.
struct ExtentHead {
    var head: MapRecorder
    /// File offset of the extent's first byte.
    var logicalOffset: UInt64
    /// `nextpackoff` of the index holding the position's own lcluster (the inline pcluster follows it).
    var lastNextPackOffset: UInt64
}

extension Image {
    /// Finds the head lcluster of the extent containing `position` (`z_erofs_do_map_blocks` up to lookback).
    func locateHead(of inode: Inode, info: CompressionInfo, position: UInt64) throws -> ExtentHead {
        let bits = UInt64(info.logicalClusterBits)
        var recorder = MapRecorder()
        let initial = position >> bits
        let endOffset = position & ((1 << bits) - 1)
        try self.loadLcluster(initial, of: inode, info: info, into: &recorder, lookahead: false)
        let nextPack = recorder.nextPackOffset
        if recorder.type.isHead && endOffset >= recorder.clusterOffset {
            recorder.headType = recorder.type
            return ExtentHead(
                head: recorder, logicalOffset: recorder.lcn << bits | recorder.clusterOffset,
                lastNextPackOffset: nextPack)
        }
        var distance = recorder.delta0
        if recorder.type.isHead {
            // The position lies before this head's cluster offset: it belongs to the previous extent.
            guard recorder.lcn > 0 else {
                throw EROFSError.corrupted("invalid logical cluster 0", nid: inode.nid)
            }
            distance = 1
        }
        // Look back to the head (`z_erofs_extent_lookback`); every step moves back at least one lcluster.
        while recorder.lcn >= distance {
            let lcn = recorder.lcn - distance
            try self.loadLcluster(lcn, of: inode, info: info, into: &recorder, lookahead: false)
            if recorder.type == .nonhead {
                guard recorder.delta0 != 0 else {
                    throw EROFSError.corrupted("lookback distance 0 @ lcn \(lcn)", nid: inode.nid)
                }
                distance = recorder.delta0
                continue
            }
            recorder.headType = recorder.type
            return ExtentHead(
                head: recorder, logicalOffset: lcn << bits | recorder.clusterOffset, lastNextPackOffset: nextPack)
        }
        throw EROFSError.corrupted("bogus lookback distance @ lcn \(recorder.lcn)", nid: inode.nid)
    }

    /// Maps `position` (< size) of a compressed inode to its extent.
    func compressedExtent(of inode: Inode, info: CompressionInfo, containing position: UInt64) throws
        -> CompressedExtent
    {
        if info.wholeFileIsFragment {
            return CompressedExtent(
                logicalOffset: 0, length: inode.size, storage: .fragment(offset: info.fragmentOffset),
                format: .shifted, partialReference: false)
        }
        if let count = info.encodedExtentCount {
            return try self.encodedExtent(of: inode, info: info, count: count, containing: position)
        }
        let located = try self.locateHead(of: inode, info: info, position: position)
        let head = located.head
        let length = try self.decodedLength(of: inode, info: info, head: head, logicalOffset: located.logicalOffset)
        guard located.logicalOffset <= position, position - located.logicalOffset < length,
            length <= UInt64(CompressionConfiguration.maximumDecodedBytes)
        else {
            throw EROFSError.corrupted(
                "extent at \(located.logicalOffset) of \(length) bytes does not cover offset \(position)",
                nid: inode.nid)
        }
        let storage: CompressedExtent.Storage
        if info.advise.contains(.inlinePcluster), head.lcn == info.tailHeadLcluster,
            let inline = info.inlineDataLocation
        {
            storage = .inline(inline, byteCount: info.inlineDataSize)
        } else if info.advise.contains(.fragmentPcluster), head.lcn == info.tailHeadLcluster {
            storage = .fragment(offset: info.fragmentOffset)
        } else {
            // The head's address, before pclusterBlocks loads the next lcluster into the recorder.
            let blockAddress = head.blockAddress
            var recorder = head
            let blocks = try self.pclusterBlocks(of: inode, info: info, head: &recorder)
            let maximumBlocks = UInt64(CompressionConfiguration.maximumPclusterBytes >> self.superBlock.blockSizeBits)
            guard blocks > 0, blocks <= maximumBlocks, blockAddress < 1 << 48 else {
                throw EROFSError.corrupted("pcluster of \(blocks) blocks @ block \(blockAddress)", nid: inode.nid)
            }
            let offset = blockAddress << UInt64(self.superBlock.blockSizeBits)
            let byteCount = Int(blocks) << self.superBlock.blockSizeBits
            let (end, overflow) = offset.addingReportingOverflow(UInt64(byteCount))
            guard !overflow, end <= self.source.size else {
                throw EROFSError.corrupted("pcluster at block \(blockAddress) lies past the end", nid: inode.nid)
            }
            storage = .blocks(offset: offset, byteCount: byteCount)
        }
        let format: PclusterFormat
        switch head.headType {
        case .plain:
            format = info.advise.contains(.interlacedPcluster) ? .interlaced : .shifted
        case .head2:
            format = .compressed(info.algorithms.1)
        default:
            format = .compressed(info.algorithms.0)
        }
        return CompressedExtent(
            logicalOffset: located.logicalOffset, length: length, storage: storage, format: format,
            partialReference: head.partialReference)
    }

    /// Blocks of the pcluster whose head is `head` (`z_erofs_get_extent_compressedlen`).
    private func pclusterBlocks(of inode: Inode, info: CompressionInfo, head: inout MapRecorder) throws -> UInt64 {
        let bits = info.logicalClusterBits
        let lclusterBlocks = UInt64(1) << UInt64(bits - self.superBlock.blockSizeBits)
        let big =
            (head.headType == .head1 && info.advise.contains(.bigPcluster1))
            || (head.headType == .head2 && info.advise.contains(.bigPcluster2))
        guard big else { return lclusterBlocks }
        if head.compressedBlocks != 0 { return head.compressedBlocks }
        let lcn = head.lcn + 1
        try self.loadLcluster(lcn, of: inode, info: info, into: &head, lookahead: false)
        switch head.type {
        case .plain, .head1, .head2:
            // The next lcluster is a head: a one-lcluster pcluster.
            return lclusterBlocks
        case .nonhead:
            guard head.delta0 == 1, head.compressedBlocks != 0 else {
                throw EROFSError.corrupted("cannot find CBLKCNT @ lcn \(lcn)", nid: inode.nid)
            }
            return head.compressedBlocks
        }
    }

    /// Decoded length of the extent starting at `logicalOffset`: up to the next head, or the end of the file
    /// (`z_erofs_get_extent_decompressedlen`).
    private func decodedLength(
        of inode: Inode, info: CompressionInfo, head: MapRecorder, logicalOffset: UInt64
    ) throws -> UInt64 {
        let bits = UInt64(info.logicalClusterBits)
        var recorder = head
        var lcn = head.lcn
        let headLcn = logicalOffset >> bits
        repeat {
            if lcn > UInt64.max >> bits || lcn << bits >= inode.size {
                return inode.size - logicalOffset
            }
            try self.loadLcluster(lcn, of: inode, info: info, into: &recorder, lookahead: true)
            if recorder.type.isHead {
                if lcn != headLcn { break }
                recorder.delta1 = 1
            }
            let next = lcn &+ recorder.delta1
            guard recorder.delta1 == 0 || next > lcn else {
                throw EROFSError.corrupted("lookahead distance wraps @ lcn \(lcn)", nid: inode.nid)
            }
            lcn = next
        } while recorder.delta1 != 0
        let end = (lcn << bits) &+ recorder.clusterOffset
        guard end > logicalOffset else {
            throw EROFSError.corrupted("extent at \(logicalOffset) ends before it starts", nid: inode.nid)
        }
        return min(end, inode.size) - logicalOffset
    }
}
