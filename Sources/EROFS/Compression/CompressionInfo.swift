/// What the map header of a compressed inode says, plus where its tail extent is (the kernel's
/// `z_erofs_fill_inode_lazy`).
struct CompressionInfo: Sendable {
    var advise: MapAdvise
    /// HEAD1 and HEAD2 algorithms.
    var algorithms: (CompressionAlgorithm, CompressionAlgorithm)
    var logicalClusterBits: Int
    /// Encoded size of the ztailpacking inline pcluster.
    var inlineDataSize: Int
    /// Where the inline pcluster is: right after the index pack holding the last lcluster.
    var inlineDataLocation: MetadataLocation?
    /// Byte offset of this file's fragment in the packed inode.
    var fragmentOffset: UInt64
    /// The whole file is a fragment in the packed inode.
    var wholeFileIsFragment: Bool
    /// Head lcluster of the tail extent (the one that may be inline or a fragment).
    var tailHeadLcluster: UInt64
    /// COMPRESSED_FULL with `Z_EROFS_ADVISE_EXTENTS`: the number of encoded extent records.
    var encodedExtentCount: UInt64?
}

extension Image {
    /// Reads a compressed inode's map header and locates its tail extent.
    func compressionInfo(of inode: Inode) throws -> CompressionInfo {
        let payload = inode.payloadLocation
        let headerLocation = MetadataLocation(offset: (payload.offset + 7) & ~7, inMetabox: payload.inMetabox)
        let header = MapHeaderRecord(try self.readMetadata(headerLocation, count: MapHeaderRecord.size))
        if header.clusterBits & MapHeaderRecord.wholeFileFragmentBit != 0 {
            guard self.packedInode != nil else {
                throw EROFSError.corrupted("file is a fragment but the image has no packed inode", nid: inode.nid)
            }
            return CompressionInfo(
                advise: .fragmentPcluster, algorithms: (.lz4, .lz4), logicalClusterBits: self.superBlock.blockSizeBits,
                inlineDataSize: 0, inlineDataLocation: nil, fragmentOffset: header.raw ^ (1 << 63),
                wholeFileIsFragment: true, tailHeadLcluster: 0, encodedExtentCount: nil)
        }
        let advise = MapAdvise(rawValue: header.advise)
        let bits = self.superBlock.blockSizeBits + Int(header.clusterBits & 15)
        guard bits <= 30 else {
            throw EROFSError.corrupted("logical cluster of 2^\(bits) bytes", nid: inode.nid)
        }
        if inode.layout == .compressedFull && advise.contains(.encodedExtents) {
            // Encoded extents: h_extents_lo (32 bits) and h_extents_hi (16 bits) count the records; each
            // record carries its own algorithm.
            let count = UInt64(header.raw & 0xFFFF_FFFF) | (header.raw >> 48) << 32
            return CompressionInfo(
                advise: advise, algorithms: (.lz4, .lz4), logicalClusterBits: bits, inlineDataSize: 0,
                inlineDataLocation: nil, fragmentOffset: 0, wholeFileIsFragment: false, tailHeadLcluster: .max,
                encodedExtentCount: count)
        }
        guard let head1 = CompressionAlgorithm(rawValue: header.algorithmType & 15),
            let head2 = CompressionAlgorithm(rawValue: header.algorithmType >> 4)
        else {
            throw EROFSError(
                .unsupported, "unknown compression algorithm type 0x\(String(header.algorithmType, radix: 16))",
                nid: inode.nid)
        }
        let bigPcluster = advise.intersection([.bigPcluster1, .bigPcluster2])
        if !bigPcluster.isEmpty && !self.superBlock.incompatFeatures.contains(.compressionConfigs) {
            throw EROFSError.corrupted("big pclusters without the superblock feature", nid: inode.nid)
        }
        if inode.layout == .compressedCompact && bigPcluster.rawValue != 0
            && bigPcluster != [.bigPcluster1, .bigPcluster2]
        {
            throw EROFSError.corrupted("compact indexes with inconsistent big pcluster heads", nid: inode.nid)
        }
        var info = CompressionInfo(
            advise: advise, algorithms: (head1, head2), logicalClusterBits: bits,
            inlineDataSize: Int(header.inlineDataSize), inlineDataLocation: nil,
            fragmentOffset: UInt64(header.fragmentOffset), wholeFileIsFragment: false, tailHeadLcluster: .max,
            encodedExtentCount: nil)
        guard inode.size > 0, advise.contains(.inlinePcluster) || advise.contains(.fragmentPcluster) else {
            return info
        }
        // Map the last byte to find the tail extent's head (EROFS_GET_BLOCKS_FINDTAIL).
        let tail = try self.locateHead(of: inode, info: info, position: inode.size - 1)
        info.tailHeadLcluster = tail.head.lcn
        if advise.contains(.inlinePcluster) {
            let location = MetadataLocation(offset: tail.lastNextPackOffset, inMetabox: payload.inMetabox)
            let blockSize = UInt64(self.superBlock.blockSize)
            guard info.inlineDataSize > 0, location.offset % blockSize + UInt64(info.inlineDataSize) <= blockSize else {
                throw EROFSError.corrupted(
                    "invalid tail-packing pcluster of \(info.inlineDataSize) bytes", nid: inode.nid, at: location.offset
                )
            }
            info.inlineDataLocation = location
        } else if inode.layout == .compressedFull {
            // Full indexes keep the fragment offset's high half in the tail head's block address.
            info.fragmentOffset |= tail.head.blockAddress << 32
        }
        if advise.contains(.fragmentPcluster) && self.packedInode == nil {
            throw EROFSError.corrupted("fragment tail but the image has no packed inode", nid: inode.nid)
        }
        return info
    }
}
