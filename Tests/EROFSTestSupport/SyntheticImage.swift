import EROFS

/// Builds small EROFS images byte by byte, for format features Debian's mkfs.erofs 1.5 cannot produce:
/// 512 B and 64 KiB blocks, long xattr name prefixes, ishare fingerprint xattrs, the nlink-1 bit, the 48-bit
/// root nid, metabox inodes, shared xattrs in the metabox, and extended inodes that cross a block boundary.
///
/// The layout is deliberately simple (one metadata area, then data blocks); it follows `erofs_fs.h` and is
/// checked against the kernel mount where one is available.
public struct SyntheticImage: Sendable {
    /// An xattr as stored: a name index (short prefix, or 0x80 | long prefix id), the name suffix, the value.
    public struct StoredXattr: Sendable {
        public var nameIndex: UInt8
        public var suffix: [UInt8]
        public var value: [UInt8]
        public init(nameIndex: UInt8, suffix: String, value: [UInt8]) {
            self.nameIndex = nameIndex
            self.suffix = Array(suffix.utf8)
            self.value = value
        }
        var entrySize: Int { (4 + self.suffix.count + self.value.count + 3) & ~3 }
    }

    /// A node of the tree.
    public final class Node: @unchecked Sendable {
        public enum Kind: Sendable {
            case regular([UInt8])
            case directory
            case symlink(String)
        }
        public enum DataPlacement: Sendable {
            /// FLAT_PLAIN: every byte in data blocks.
            case blocks
            /// FLAT_INLINE: whole blocks, then the tail right after the inode.
            case inlineTail
        }

        public let name: String
        public let kind: Kind
        public var children: [Node] = []
        public var permissions: UInt16 = 0o644
        public var uid: UInt32 = 0
        public var gid: UInt32 = 0
        public var mtime: UInt64 = 1_700_000_000
        public var mtimeNanoseconds: UInt32 = 0
        public var extended = false
        /// Compact non-directory inodes only: set `EROFS_I_NLINK_1_BIT`.
        public var nlinkOneBit = false
        public var inMetabox = false
        public var placement: DataPlacement = .blocks
        /// Place the record so that it starts 32 bytes before a block boundary (extended records then cross it).
        public var straddleBlockBoundary = false
        public var xattrs: [StoredXattr] = []
        /// Ids (index into ``SyntheticImage/sharedXattrs``) of shared xattrs.
        public var sharedXattrIDs: [Int] = []
        /// Store the data compressed (COMPRESSED_FULL, one block per lcluster; incompressible lclusters
        /// stored plain).
        public var compression: CompressionAlgorithm?
        /// With compression: keep the tail (or the whole file) as a fragment in the packed inode.
        public var fragment: Fragment = .none

        public enum Fragment: Sendable { case none, tail, wholeFile }
        /// With compression: odd lclusters use this algorithm as HEAD2 (two algorithms in one file).
        public var head2Compression: CompressionAlgorithm?
        /// With compression: incompressible lclusters are stored interlaced instead of shifted.
        public var interlacedPlain = false
        /// Dedupe: this file's only lcluster reuses the first pcluster of `node` (marked PARTIAL_REF); the file
        /// must be a prefix of that pcluster's decoded data.
        public var sharesFirstPcluster: Node?

        // Compressed layout, filled in by the builder: one entry per lcluster (type, encoded block or nil
        // for the fragment tail), and the fragment's offset in the packed inode.
        var lclusters: [(type: UInt16, block: [UInt8]?)] = []
        /// With compression: use encoded extent records of this size (4, 8, 16 or 32 bytes) instead of
        /// lcluster indexes; pclusters are then packed back to back, not block-aligned.
        public var encodedExtentRecordSize: Int?
        // Encoded-extent pclusters, one per lcluster: format code (0 plain, algorithm + 1) and bytes (empty
        // for a hole or the fragment tail).
        var encoded: [(code: UInt32, bytes: [UInt8])] = []
        var fragmentOffset: UInt64 = 0

        // Filled in by the builder.
        var location = 0
        var nid: UInt64 = 0
        var startBlock: UInt64 = 0
        var data: [UInt8] = []

        public init(_ name: String, _ kind: Kind) {
            self.name = name
            self.kind = kind
            if case .directory = kind { self.permissions = 0o755 }
            if case .symlink = kind { self.permissions = 0o777 }
        }

        public func adding(_ children: Node...) -> Node {
            self.children.append(contentsOf: children)
            return self
        }

        var isDirectory: Bool {
            if case .directory = self.kind { return true }
            return false
        }

        var mode: UInt16 {
            switch self.kind {
            case .regular: 0o100000 | self.permissions
            case .directory: 0o040000 | self.permissions
            case .symlink: 0o120000 | self.permissions
            }
        }

        var fileTypeCode: UInt8 {
            switch self.kind {
            case .regular: 1
            case .directory: 2
            case .symlink: 7
            }
        }

        var recordSize: Int { self.extended ? 64 : 32 }

        var xattrBodySize: Int {
            guard !self.xattrs.isEmpty || !self.sharedXattrIDs.isEmpty else { return 0 }
            return 12 + 4 * self.sharedXattrIDs.count + self.xattrs.reduce(0) { $0 + $1.entrySize }
        }

        var xattrCount: UInt16 {
            let size = self.xattrBodySize
            return size == 0 ? 0 : UInt16((size - 12) / 4 + 1)
        }
    }

    public var blockSizeBits = 12
    public var root: Node
    /// Long xattr name prefixes: a short prefix index and an infix.
    public var longPrefixes: [(base: UInt8, infix: String)] = []
    public var ishareXattrPrefixID: UInt8?
    public var sharedXattrs: [StoredXattr] = []
    public var sharedXattrsInMetabox = false
    /// Set PLAIN_XATTR_PFX: the prefix table stays in the plain image even when there is a metabox.
    public var plainXattrPrefixes = false
    /// Compression configuration written for each algorithm in use (LZMA dictionary, DEFLATE window...).
    public var lzmaDictionarySize: UInt32 = 64 << 10
    public var use48BitRootNid = false

    public init(root: Node) { self.root = root }

    private var blockSize: Int { 1 << self.blockSizeBits }

    private func allNodes() -> [Node] {
        var result: [Node] = []
        var pending = [self.root]
        while let node = pending.popLast() {
            result.append(node)
            pending.append(contentsOf: node.children.reversed())
        }
        return result
    }

    private var usesMetabox: Bool { self.allNodes().contains { $0.inMetabox } || self.sharedXattrsInMetabox }

    /// Serialises the image.
    public func build() -> [UInt8] {
        let blockSize = self.blockSize
        let nodes = self.allNodes()
        let metabox = Node("(metabox)", .regular([]))
        let metaStart = roundUp(1024 + 128 + 16, blockSize)

        // Shared xattrs: in the metabox data, or in their own block after the metadata.
        var sharedBytes: [UInt8] = []
        var sharedIDs: [UInt32] = []
        for xattr in self.sharedXattrs {
            sharedIDs.append(UInt32(sharedBytes.count / 4))
            sharedBytes += serialize(xattr)
        }

        var prefixTable: [UInt8] = []
        for prefix in self.longPrefixes {
            let record = [prefix.base] + Array(prefix.infix.utf8)
            prefixTable += le16(UInt16(record.count)) + record
            while prefixTable.count % 4 != 0 { prefixTable.append(0) }
        }
        // Like the kernel: the prefix table is in the metabox when there is one (unless plain prefixes).
        let prefixesInMetabox = self.usesMetabox && !self.plainXattrPrefixes
        var metaboxHead = self.sharedXattrsInMetabox ? sharedBytes : []
        let metaboxPrefixStart = metaboxHead.count
        if prefixesInMetabox { metaboxHead += prefixTable }

        // Phase 0: encode compressed files; their fragments go to the packed inode.
        let packed = Node("(packed)", .regular([]))
        var packedData: [UInt8] = []
        for node in nodes {
            guard let algorithm = node.compression, case .regular(let bytes) = node.kind else { continue }
            node.lclusters = []
            node.encoded = []
            let count = (bytes.count + blockSize - 1) / blockSize
            if node.encodedExtentRecordSize != nil {
                for index in 0..<count {
                    let chunk = Array(bytes[(index * blockSize)..<min(bytes.count, (index + 1) * blockSize)])
                    if node.fragment == .tail && index == count - 1 {
                        node.fragmentOffset = UInt64(packedData.count)
                        packedData += chunk
                        node.encoded.append((0, []))
                    } else if chunk.allSatisfy({ $0 == 0 }) {
                        node.encoded.append((0, []))  // a hole: plen 0
                    } else if let stream = TestCompressor.compress(chunk, with: algorithm, capacity: chunk.count - 1) {
                        node.encoded.append((UInt32(algorithm.rawValue) + 1, stream))
                    } else {
                        node.encoded.append((0, chunk))
                    }
                }
                continue
            }
            for index in 0..<count {
                let chunk = Array(bytes[(index * blockSize)..<min(bytes.count, (index + 1) * blockSize)])
                if node.fragment == .wholeFile || (node.fragment == .tail && index == count - 1) {
                    if index == 0 || node.fragment == .tail { node.fragmentOffset = UInt64(packedData.count) }
                    packedData += chunk
                    node.lclusters.append((1, nil))
                } else if node.sharesFirstPcluster != nil {
                    node.lclusters.append((1 | 0x8000, nil))  // HEAD1 | Z_EROFS_LI_PARTIAL_REF, block shared
                } else if let encoded = TestCompressor.compress(
                    chunk, with: index % 2 == 1 ? node.head2Compression ?? algorithm : algorithm, capacity: blockSize)
                {
                    // Zero padding: the stream sits at the end of its block.
                    let type: UInt16 = index % 2 == 1 && node.head2Compression != nil ? 3 : 1
                    node.lclusters.append((type, [UInt8](repeating: 0, count: blockSize - encoded.count) + encoded))
                } else if node.interlacedPlain {
                    // Interlaced: the extent's bytes up to its block's end are stored last in the pcluster (the
                    // extents here start block-aligned, so the whole chunk goes to the end).
                    node.lclusters.append((0, [UInt8](repeating: 0, count: blockSize - chunk.count) + chunk))
                } else {
                    node.lclusters.append((0, chunk + [UInt8](repeating: 0, count: blockSize - chunk.count)))
                }
            }
        }
        packed.data = packedData
        let usesPacked = !packedData.isEmpty

        // Phase 1: place inode records (main metadata area, or the metabox data).
        // With the 48-bit root nid, keep nid 0 empty so that a reader using rootnid_2b would fail.
        var mainCursor = self.use48BitRootNid ? 64 : 0
        var metaboxCursor = roundUp(metaboxHead.count, 32)
        var placed = nodes
        if self.usesMetabox { placed.append(metabox) }
        if usesPacked { placed.append(packed) }
        for node in placed {
            let tail = node.placement == .inlineTail ? self.tailLength(of: node) : 0
            var cursor = node.inMetabox ? metaboxCursor : mainCursor
            if node.straddleBlockBoundary {
                while cursor % blockSize != blockSize - 32 { cursor += 32 }
            }
            if tail > 0 {
                let payload = cursor + node.recordSize + node.xattrBodySize
                if payload % blockSize + tail > blockSize { cursor = roundUp(cursor + 1, blockSize) }
            }
            node.location = cursor
            node.nid = UInt64(cursor / 32) | (node.inMetabox ? 1 << 63 : 0)
            let end = roundUp(cursor + node.recordSize + node.xattrBodySize + tail + Self.indexBytes(node), 32)
            if node.inMetabox { metaboxCursor = end } else { mainCursor = end }
        }

        // Phase 2: directory contents (needs the nids), then data blocks.
        var parents: [ObjectIdentifier: Node] = [:]
        for node in nodes { for child in node.children { parents[ObjectIdentifier(child)] = node } }
        for node in nodes where node.isDirectory {
            node.data = self.directoryBytes(node, parent: parents[ObjectIdentifier(node)] ?? self.root)
        }
        for node in nodes {
            switch node.kind {
            case .regular(let bytes) where node.compression != nil: node.data = bytes
            case .regular(let bytes): node.data = bytes
            case .symlink(let target): node.data = Array(target.utf8)
            case .directory: break
            }
        }
        let metaboxData = self.usesMetabox ? [UInt8](repeating: 0, count: roundUp(metaboxCursor, blockSize)) : []
        metabox.data = metaboxData
        var cursorBlock = (metaStart + roundUp(mainCursor, blockSize)) / blockSize
        let xattrBlock = cursorBlock
        let sharedInBlocks = self.sharedXattrsInMetabox ? [] : sharedBytes
        let prefixesInBlocks = prefixesInMetabox ? [] : prefixTable
        let prefixStart =
            prefixesInMetabox ? metaboxPrefixStart : xattrBlock * blockSize + roundUp(sharedInBlocks.count, 4)
        cursorBlock += roundUp(sharedInBlocks.count + prefixesInBlocks.count, blockSize) / blockSize
        for node in placed {
            node.startBlock = UInt64(cursorBlock)
            if node.encodedExtentRecordSize != nil {
                cursorBlock += roundUp(node.encoded.reduce(0) { $0 + $1.bytes.count }, blockSize) / blockSize
                continue
            }
            if node.compression != nil {
                cursorBlock += node.lclusters.filter { $0.block != nil }.count
                continue
            }
            let blockBytes =
                node.placement == .inlineTail ? node.data.count - self.tailLength(of: node) : node.data.count
            cursorBlock += roundUp(blockBytes, blockSize) / blockSize
            if blockBytes == 0 && node.placement == .blocks { node.startBlock = UInt64(UInt32.max) }
        }
        let totalBlocks = cursorBlock

        // Phase 3: serialise.
        var image = [UInt8](repeating: 0, count: totalBlocks * blockSize)
        var metaboxBytes = metaboxData
        metaboxBytes.replaceSubrange(0..<metaboxHead.count, with: metaboxHead)
        let xattrStart = xattrBlock * blockSize
        image.replaceSubrange(xattrStart..<xattrStart + sharedInBlocks.count, with: sharedInBlocks)
        if !prefixesInMetabox {
            image.replaceSubrange(prefixStart..<prefixStart + prefixTable.count, with: prefixTable)
        }
        for node in nodes where node.inMetabox {
            let record = self.inodeBytes(node, sharedIDs: sharedIDs)
            metaboxBytes.replaceSubrange(node.location..<node.location + record.count, with: record)
        }
        metabox.data = metaboxBytes
        for node in placed where !node.inMetabox {
            let record = self.inodeBytes(node, sharedIDs: sharedIDs)
            let start = metaStart + node.location
            image.replaceSubrange(start..<start + record.count, with: record)
        }
        for node in placed where node.encodedExtentRecordSize != nil {
            var offset = Int(node.startBlock) * blockSize
            for pcluster in node.encoded {
                image.replaceSubrange(offset..<offset + pcluster.bytes.count, with: pcluster.bytes)
                offset += pcluster.bytes.count
            }
        }
        for node in placed where node.compression != nil && node.encodedExtentRecordSize == nil {
            var block = Int(node.startBlock)
            for lcluster in node.lclusters {
                guard let bytes = lcluster.block else { continue }
                image.replaceSubrange(block * blockSize..<(block + 1) * blockSize, with: bytes)
                block += 1
            }
        }
        for node in placed where node.compression == nil {
            let blockBytes =
                node.placement == .inlineTail ? node.data.count - self.tailLength(of: node) : node.data.count
            guard blockBytes > 0 else { continue }
            let start = Int(node.startBlock) * blockSize
            image.replaceSubrange(start..<start + blockBytes, with: node.data[0..<blockBytes])
        }

        var superBlock = [UInt8](repeating: 0, count: 144)
        put32(&superBlock, 0, 0xE0F5_E1E2)
        var compat: UInt32 = 0x02  // MTIME
        if self.ishareXattrPrefixID != nil { compat |= 0x20 }
        if self.sharedXattrsInMetabox { compat |= 0x08 }
        if self.plainXattrPrefixes { compat |= 0x10 }
        put32(&superBlock, 0x08, compat)
        superBlock[0x0C] = UInt8(self.blockSizeBits)
        superBlock[0x0D] = 1
        if self.use48BitRootNid {
            put64(&superBlock, 0x70, self.root.nid)
        } else {
            put16(&superBlock, 0x0E, UInt16(self.root.nid))
        }
        put64(&superBlock, 0x10, UInt64(nodes.count))
        put64(&superBlock, 0x18, 1_600_000_000)
        put32(&superBlock, 0x24, UInt32(totalBlocks))
        put32(&superBlock, 0x28, UInt32(metaStart / blockSize))
        // Shared xattrs in the metabox start at its byte 0: xattr_blkaddr is relative to the metabox data.
        put32(&superBlock, 0x2C, self.sharedXattrsInMetabox ? 0 : UInt32(xattrBlock))
        for index in 0..<16 { superBlock[0x30 + index] = UInt8(index * 17) }
        var incompat: UInt32 = 0
        let algorithms = Set(nodes.compactMap(\.compression) + nodes.compactMap(\.head2Compression))
        if nodes.contains(where: { $0.head2Compression != nil }) { incompat |= 0x08 }  // COMPR_HEAD2
        if !algorithms.isEmpty {
            incompat |= 0x01 | 0x02  // ZERO_PADDING, COMPR_CFGS
            put16(&superBlock, 0x54, algorithms.reduce(0) { $0 | UInt16(1) << UInt16($1.rawValue) })
            var position = 1024 + 144
            for algorithm in algorithms.sorted(by: { $0.rawValue < $1.rawValue }) {
                position = roundUp(position, 4)
                let record = self.configurationRecord(algorithm)
                image.replaceSubrange(position..<position + 2, with: le16(UInt16(record.count)))
                image.replaceSubrange(position + 2..<position + 2 + record.count, with: record)
                position += 2 + record.count
            }
        }
        if usesPacked {
            incompat |= 0x20  // FRAGMENTS
            put64(&superBlock, 0x60, packed.nid)
        }
        if !self.longPrefixes.isEmpty { incompat |= 0x40 }
        if self.use48BitRootNid { incompat |= 0x80 }
        if self.usesMetabox { incompat |= 0x100 }
        put32(&superBlock, 0x50, incompat)
        superBlock[0x5B] = UInt8(self.longPrefixes.count)
        put32(&superBlock, 0x5C, UInt32(prefixStart / 4))
        superBlock[0x69] = self.ishareXattrPrefixID ?? 0
        if self.usesMetabox { put64(&superBlock, 0x80, metabox.nid) }
        image.replaceSubrange(1024..<1024 + superBlock.count, with: superBlock)
        return image
    }

    /// Bytes after a compressed inode's record and xattrs: padding to 8, the map header and the full index.
    private static func indexBytes(_ node: Node) -> Int {
        guard node.compression != nil else { return 0 }
        let used = node.recordSize + node.xattrBodySize
        let header = (8 - used % 8) % 8 + 8
        if let size = node.encodedExtentRecordSize {
            let padding = (size - (used + header) % size) % size
            return header + padding + (size == 4 ? 8 : 0) + size * node.encoded.count
        }
        return node.fragment == .wholeFile ? header : header + 8 + 8 * node.lclusters.count
    }

    /// Map header and encoded extent records (`struct z_erofs_extent`, truncated to the record size).
    private func encodedExtentIndex(_ node: Node, size: Int, recordBytes: Int) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 8)
        put32(&header, 0, UInt32(node.encoded.count))  // h_extents_lo; h_extents_hi (bytes 6-7) stays 0
        let sizeCode = UInt16(size.trailingZeroBitCount - 2)
        put16(&header, 4, 0x1 | sizeCode << 1 | (node.fragment == .tail ? 0x20 : 0) | (node.interlacedPlain ? 0x10 : 0))
        var bytes = [UInt8](repeating: 0, count: (8 - recordBytes % 8) % 8) + header
        while (recordBytes + bytes.count) % size != 0 { bytes.append(0) }
        let base = node.startBlock * UInt64(self.blockSize)
        if size == 4 { bytes += (0..<8).map { UInt8(truncatingIfNeeded: base >> (8 * UInt64($0))) } }
        var physical = base
        for (index, pcluster) in node.encoded.enumerated() {
            var record = [UInt8](repeating: 0, count: 32)
            let isFragment = node.fragment == .tail && index == node.encoded.count - 1
            let plen = isFragment ? UInt32(node.fragmentOffset) : pcluster.code << 28 | UInt32(pcluster.bytes.count)
            put32(&record, 0, plen)
            put32(&record, 4, isFragment ? 0 : UInt32(truncatingIfNeeded: physical))
            put32(&record, 8, isFragment ? 0 : UInt32(truncatingIfNeeded: physical >> 32))
            put32(&record, 12, UInt32(index * self.blockSize))
            bytes += record[0..<size]
            physical += UInt64(pcluster.bytes.count)
        }
        return bytes
    }

    private func compressionIndex(_ node: Node, recordBytes: Int) -> [UInt8] {
        if let size = node.encodedExtentRecordSize {
            return self.encodedExtentIndex(node, size: size, recordBytes: recordBytes)
        }
        var bytes = [UInt8](repeating: 0, count: (8 - recordBytes % 8) % 8)
        guard let algorithm = node.compression else { return bytes }
        if node.fragment == .wholeFile {
            // Bit 63 (bit 7 of h_clusterbits) set: the rest of the 8-byte header is the fragment offset.
            let header = node.fragmentOffset | 1 << 63
            return bytes + (0..<8).map { UInt8(truncatingIfNeeded: header >> (8 * UInt64($0))) }
        }
        var header = [UInt8](repeating: 0, count: 8)
        put32(&header, 0, UInt32(truncatingIfNeeded: node.fragmentOffset))
        put16(&header, 4, (node.fragment == .tail ? 0x20 : 0) | (node.interlacedPlain ? 0x10 : 0))
        header[6] = algorithm.rawValue | (node.head2Compression ?? algorithm).rawValue << 4
        bytes += header + [UInt8](repeating: 0, count: 8)
        var block = UInt32(node.startBlock)
        for lcluster in node.lclusters {
            var entry = [UInt8](repeating: 0, count: 8)
            put16(&entry, 0, lcluster.type)
            if lcluster.block != nil {
                put32(&entry, 4, block)
                block += 1
            } else if let shared = node.sharesFirstPcluster {
                put32(&entry, 4, UInt32(shared.startBlock))
            }
            bytes += entry
        }
        return bytes
    }

    /// The `z_erofs_*_cfgs` record for `algorithm`.
    private func configurationRecord(_ algorithm: CompressionAlgorithm) -> [UInt8] {
        var record = [UInt8](repeating: 0, count: 14)
        switch algorithm {
        case .lz4:
            put16(&record, 2, 1)  // max_pclusterblks
        case .lzma:
            put32(&record, 0, self.lzmaDictionarySize)
        case .deflate:
            record = [15, 0, 0, 0, 0, 0]
        case .zstd:
            record = [0, 17 - 10, 0, 0, 0, 0]
        }
        return record
    }

    private func tailLength(of node: Node) -> Int {
        let remainder = node.data.count % self.blockSize
        if case .regular(let bytes) = node.kind, !bytes.isEmpty {
            return bytes.count % self.blockSize == 0 ? self.blockSize : bytes.count % self.blockSize
        }
        if case .symlink(let target) = node.kind { return target.utf8.count % self.blockSize }
        return remainder
    }

    /// Directory blocks: dirents sorted byte-wise (`.` and `..` included), names packed at the block end.
    private func directoryBytes(_ node: Node, parent: Node) -> [UInt8] {
        var entries: [([UInt8], UInt64, UInt8)] = [(Array(".".utf8), node.nid, 2), (Array("..".utf8), parent.nid, 2)]
        for child in node.children { entries.append((Array(child.name.utf8), child.nid, child.fileTypeCode)) }
        entries.sort { $0.0.lexicographicallyPrecedes($1.0) }
        var bytes: [UInt8] = []
        var index = 0
        while index < entries.count {
            var count = 0
            var used = 0
            while index + count < entries.count && used + 12 + entries[index + count].0.count <= self.blockSize {
                used += 12 + entries[index + count].0.count
                count += 1
            }
            var block = [UInt8](repeating: 0, count: self.blockSize)
            var nameOffset = 12 * count
            for slot in 0..<count {
                let (name, nid, type) = entries[index + slot]
                put64(&block, slot * 12, nid)
                put16(&block, slot * 12 + 8, UInt16(nameOffset))
                block[slot * 12 + 10] = type
                block.replaceSubrange(nameOffset..<nameOffset + name.count, with: name)
                nameOffset += name.count
            }
            index += count
            bytes += index < entries.count ? block : Array(block[0..<nameOffset])
        }
        return bytes
    }

    private func inodeBytes(_ node: Node, sharedIDs: [UInt32]) -> [UInt8] {
        var record = [UInt8](repeating: 0, count: node.recordSize)
        let layout: UInt16 = node.compression != nil ? 1 : node.placement == .inlineTail ? 2 : 0
        var format = (layout << 1) | (node.extended ? 1 : 0)
        put16(&record, 0x02, node.xattrCount)
        put16(&record, 0x04, node.mode)
        let startBlock =
            node.encodedExtentRecordSize != nil
            ? UInt64(roundUp(node.encoded.reduce(0) { $0 + $1.bytes.count }, self.blockSize) / self.blockSize)
            : node.compression != nil ? UInt64(node.lclusters.filter { $0.block != nil }.count) : node.startBlock
        if node.extended {
            put64(&record, 0x08, UInt64(node.data.count))
            put32(&record, 0x10, UInt32(truncatingIfNeeded: startBlock))
            put16(&record, 0x06, UInt16(truncatingIfNeeded: startBlock >> 32))
            put32(&record, 0x18, node.uid)
            put32(&record, 0x1C, node.gid)
            put64(&record, 0x20, node.mtime)
            put32(&record, 0x28, node.mtimeNanoseconds)
            put32(&record, 0x2C, node.isDirectory ? 2 + UInt32(node.children.filter(\.isDirectory).count) : 1)
        } else {
            put32(&record, 0x08, UInt32(node.data.count))
            put32(&record, 0x0C, UInt32(node.mtime - 1_600_000_000))
            put32(&record, 0x10, UInt32(truncatingIfNeeded: startBlock))
            put16(&record, 0x18, UInt16(node.uid))
            put16(&record, 0x1A, UInt16(node.gid))
            if node.nlinkOneBit && !node.isDirectory {
                format |= 1 << 4
                put16(&record, 0x06, UInt16(truncatingIfNeeded: startBlock >> 32))
            } else {
                put16(&record, 0x06, node.isDirectory ? 2 + UInt16(node.children.filter(\.isDirectory).count) : 1)
            }
        }
        put16(&record, 0x00, format)
        if node.xattrBodySize > 0 {
            var body = [UInt8](repeating: 0, count: 12)
            body[4] = UInt8(node.sharedXattrIDs.count)
            for id in node.sharedXattrIDs { body += le32(sharedIDs[id]) }
            for xattr in node.xattrs { body += serialize(xattr) }
            record += body
        }
        if node.compression != nil {
            record += self.compressionIndex(node, recordBytes: record.count)
        }
        if node.placement == .inlineTail {
            let tail = self.tailLength(of: node)
            record += node.data[(node.data.count - tail)...]
        }
        return record
    }
}

private func serialize(_ xattr: SyntheticImage.StoredXattr) -> [UInt8] {
    var bytes: [UInt8] = [UInt8(xattr.suffix.count), xattr.nameIndex] + le16(UInt16(xattr.value.count))
    bytes += xattr.suffix + xattr.value
    while bytes.count % 4 != 0 { bytes.append(0) }
    return bytes
}

private func roundUp(_ value: Int, _ multiple: Int) -> Int { (value + multiple - 1) / multiple * multiple }
private func le16(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8)] }
private func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
private func put16(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt16) {
    bytes.replaceSubrange(offset..<offset + 2, with: le16(value))
}
private func put32(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt32) {
    bytes.replaceSubrange(offset..<offset + 4, with: le32(value))
}
private func put64(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt64) {
    bytes.replaceSubrange(offset..<offset + 8, with: (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) })
}
