/// State gathered while walking a compressed inode's lcluster indexes: the kernel's
/// `struct z_erofs_maprecorder`. Fields persist across loads exactly as there (notably `compressedBlocks`,
/// found on the first NONHEAD lcluster of a big pcluster).
struct MapRecorder {
    var lcn: UInt64 = 0
    var type: LclusterType = .plain
    var headType: LclusterType = .plain
    var clusterOffset: UInt64 = 0
    var delta0: UInt64 = 0
    var delta1: UInt64 = 0
    var blockAddress: UInt64 = 0
    var compressedBlocks: UInt64 = 0
    var nextPackOffset: UInt64 = 0
    var partialReference = false
}

extension Image {
    /// Loads lcluster `lcn` of `inode` into `recorder` from full or compact indexes.
    func loadLcluster(
        _ lcn: UInt64, of inode: Inode, info: CompressionInfo, into recorder: inout MapRecorder, lookahead: Bool
    ) throws {
        switch inode.layout {
        case .compressedFull:
            try self.loadFullLcluster(lcn, of: inode, info: info, into: &recorder)
        case .compressedCompact:
            try self.loadCompactLcluster(lcn, of: inode, info: info, into: &recorder, lookahead: lookahead)
        default:
            throw EROFSError.corrupted("not a compressed inode", nid: inode.nid)
        }
    }

    /// COMPRESSED_FULL: 8-byte `z_erofs_lcluster_index` entries after the map header and 8 bytes of padding.
    private func loadFullLcluster(
        _ lcn: UInt64, of inode: Inode, info: CompressionInfo, into recorder: inout MapRecorder
    ) throws {
        let payload = inode.payloadLocation
        let base = ((payload.offset + 7) & ~7) + UInt64(MapHeaderRecord.size) + 8
        let (scaled, overflow1) = lcn.multipliedReportingOverflow(by: UInt64(LclusterIndexRecord.size))
        let (position, overflow2) = base.addingReportingOverflow(scaled)
        guard !overflow1, !overflow2 else { throw EROFSError.corrupted("lcluster \(lcn) out of range", nid: inode.nid) }
        let bytes = try self.readMetadata(
            MetadataLocation(offset: position, inMetabox: payload.inMetabox), count: LclusterIndexRecord.size)
        let record = LclusterIndexRecord(bytes, at: 0)
        recorder.nextPackOffset = position + UInt64(LclusterIndexRecord.size)
        recorder.lcn = lcn
        let clusterSize = UInt64(1) << UInt64(info.logicalClusterBits)
        switch record.type {
        case .nonhead:
            recorder.clusterOffset = clusterSize
            recorder.delta0 = UInt64(record.delta0)
            if record.delta0 & LclusterIndexRecord.blockCountFlag != 0 {
                guard !info.advise.isDisjoint(with: [.bigPcluster1, .bigPcluster2]) else {
                    throw EROFSError.corrupted("CBLKCNT without big pclusters @ lcn \(lcn)", nid: inode.nid)
                }
                recorder.compressedBlocks = UInt64(record.delta0 & ~LclusterIndexRecord.blockCountFlag)
                recorder.delta0 = 1
            }
            recorder.delta1 = UInt64(record.delta1)
        case .plain, .head1, .head2:
            if record.advise & LclusterIndexRecord.partialReference != 0 { recorder.partialReference = true }
            recorder.clusterOffset = UInt64(record.clusterOffset)
            guard recorder.clusterOffset < clusterSize else {
                throw EROFSError.corrupted("cluster offset \(record.clusterOffset) @ lcn \(lcn)", nid: inode.nid)
            }
            recorder.blockAddress = UInt64(record.blockAddress)
        }
        recorder.type = record.type
    }

    /// COMPRESSED_COMPACT: packs of 2 lclusters in 8 bytes (4B) or 16 in 32 bytes (2B), each pack ending with
    /// the block address of its first head; the 2B packs are 32-byte aligned (`compacted_load_cluster_from_disk`).
    private func loadCompactLcluster(
        _ lcn: UInt64, of inode: Inode, info: CompressionInfo, into recorder: inout MapRecorder, lookahead: Bool
    ) throws {
        let payload = inode.payloadLocation
        let indexBase = ((payload.offset + 7) & ~7) + UInt64(MapHeaderRecord.size)
        let blockSize = UInt64(self.superBlock.blockSize)
        let total = (inode.size + blockSize - 1) / blockSize
        guard lcn < total else {
            throw EROFSError.corrupted("lcluster \(lcn) beyond the \(total) of the file", nid: inode.nid)
        }
        recorder.lcn = lcn
        var initial4B = (32 - indexBase % 32) / 4
        if initial4B == 8 { initial4B = 0 }
        let compacted2B: UInt64 =
            info.advise.contains(.compacted2B) && initial4B < total ? (total - initial4B) / 16 * 16 : 0
        var position = indexBase
        var index = lcn
        var shift: UInt64 = 2
        if index >= initial4B {
            position += initial4B * 4
            index -= initial4B
            if index < compacted2B {
                shift = 1
            } else {
                position += compacted2B * 2
                index -= compacted2B
            }
        }
        position += index << shift
        try self.unpackCompactIndex(
            inode: inode, info: info, shift: shift, position: position, inMetabox: payload.inMetabox,
            into: &recorder, lookahead: lookahead)
    }

    private func unpackCompactIndex(
        inode: Inode, info: CompressionInfo, shift: UInt64, position: UInt64, inMetabox: Bool,
        into recorder: inout MapRecorder, lookahead: Bool
    ) throws {
        let bits = info.logicalClusterBits
        let count: Int
        if shift == 2 && bits <= 14 {
            count = 2
        } else if shift == 1 && bits <= 12 {
            count = 16
        } else {
            throw EROFSError(.unsupported, "compact indexes with \(bits)-bit lclusters", nid: inode.nid)
        }
        let packBytes = UInt64(count) << shift
        let packStart = position / packBytes * packBytes
        recorder.nextPackOffset = packStart + packBytes
        let pack = try self.readMetadata(
            MetadataLocation(offset: packStart, inMetabox: inMetabox), count: Int(packBytes))
        let decoder = CompactPackDecoder(pack: pack, count: count, clusterBits: bits)
        let bigPcluster = info.advise.contains(.bigPcluster1)
        var i = Int((position - packStart) >> shift)
        var (low, type) = decoder.entry(i)
        recorder.type = type
        let blockCountFlag = UInt64(LclusterIndexRecord.blockCountFlag)
        if type == .nonhead {
            recorder.clusterOffset = UInt64(1) << UInt64(bits)
            if lookahead { recorder.delta1 = decoder.lookaheadDistance(from: i) }
            if low & blockCountFlag != 0 {
                guard bigPcluster else {
                    throw EROFSError.corrupted("CBLKCNT without big pclusters @ lcn \(recorder.lcn)", nid: inode.nid)
                }
                recorder.compressedBlocks = low & ~blockCountFlag
                recorder.delta0 = 1
                return
            }
            if i + 1 != count {
                recorder.delta0 = low
                return
            }
            // The last lcluster of a pack stores delta[1]; derive delta[0] from the one before it.
            (low, type) = decoder.entry(i - 1)
            if type != .nonhead {
                low = 0
            } else if low & blockCountFlag != 0 {
                low = 1
            }
            recorder.delta0 = low + 1
            return
        }
        recorder.clusterOffset = low
        recorder.delta0 = 0
        // The pack stores the block address of its first head; count the blocks of the heads before ours.
        var blocks: UInt64 = 0
        if !bigPcluster {
            blocks = 1
            while i > 0 {
                i -= 1
                let (entryLow, entryType) = decoder.entry(i)
                if entryType == .nonhead { i -= Int(entryLow) }
                if i >= 0 { blocks += 1 }
            }
        } else {
            while i > 0 {
                i -= 1
                let (entryLow, entryType) = decoder.entry(i)
                if entryType == .nonhead {
                    if entryLow & blockCountFlag != 0 {
                        i -= 1
                        blocks += entryLow & ~blockCountFlag
                        continue
                    }
                    guard entryLow > 1 else {
                        throw EROFSError.corrupted("big pcluster with a plain delta of \(entryLow)", nid: inode.nid)
                    }
                    i -= Int(entryLow) - 2
                    continue
                }
                blocks += 1
            }
        }
        recorder.blockAddress = UInt64(pack.le32(Int(packBytes) - 4)) &+ blocks
    }
}

/// Decodes the bit-packed entries of one compact index pack.
private struct CompactPackDecoder {
    let pack: [UInt8]
    let count: Int
    /// Width of an entry's low field: the lcluster bits, at least 12.
    let clusterBits: Int
    let encodeBits: Int

    init(pack: [UInt8], count: Int, clusterBits: Int) {
        self.pack = pack
        self.count = count
        // Each entry's low field is at least 12 bits wide, so that CBLKCNT (bit 11) fits even in the
        // lclusters of sub-page blocks (the kernel's `lobits`).
        self.clusterBits = max(clusterBits, 12)
        self.encodeBits = (pack.count - 4) * 8 / count
    }

    /// Entry `i`: its low bits (cluster offset or delta) and its type.
    func entry(_ i: Int) -> (UInt64, LclusterType) {
        let bit = self.encodeBits * i
        var word: UInt32 = 0
        for byte in 0..<4 where bit / 8 + byte < self.pack.count {
            word |= UInt32(self.pack[bit / 8 + byte]) << (8 * UInt32(byte))
        }
        word >>= UInt32(bit & 7)
        let low = UInt64(word & ((1 << UInt32(self.clusterBits)) - 1))
        return (low, LclusterType(rawValue: UInt8((word >> UInt32(self.clusterBits)) & 3))!)
    }

    /// Distance to the next head from NONHEAD entry `i` (`get_compacted_la_distance`).
    func lookaheadDistance(from start: Int) -> UInt64 {
        var distance: UInt64 = 0
        var i = start
        var low: UInt64 = 0
        repeat {
            let (entryLow, type) = self.entry(i)
            low = entryLow
            if type != .nonhead { return distance }
            distance += 1
            i += 1
        } while i < self.count
        if low & UInt64(LclusterIndexRecord.blockCountFlag) == 0 { distance += low &- 1 }
        return distance
    }
}
