/// Per-algorithm settings from the compression configuration records (`COMPR_CFGS`) after the superblock.
public struct CompressionConfiguration: Sendable, Hashable {
    /// Algorithms the image declares; compressed inodes may use only these.
    public var algorithms: Set<CompressionAlgorithm> = [.lz4]
    /// LZ4 sliding window (0 = the 64 KiB default).
    public var lz4MaxDistance: UInt16 = 0
    /// Largest LZ4 pcluster in blocks.
    public var lz4MaxPclusterBlocks: Int = 1
    /// LZMA dictionary size in bytes.
    public var lzmaDictionarySize: UInt32 = 0
    /// DEFLATE window bits as recorded (0...15; mkfs.erofs's libdeflate backend writes 0). Decoding always
    /// allows the largest window, as the kernel does.
    public var deflateWindowBits: UInt8 = 15
    /// Zstandard window log.
    public var zstdWindowLog: UInt8 = 0

    /// Largest pcluster the format allows (`Z_EROFS_PCLUSTER_MAX_SIZE`).
    static let maximumPclusterBytes = 1 << 20
    /// Largest decoded pcluster the format allows (`Z_EROFS_PCLUSTER_MAX_DSIZE`).
    static let maximumDecodedBytes = 12 << 20
    static let maximumLZMADictionary: UInt32 = 8 << 20
}

extension Image {
    /// Reads the configuration records: for each bit of `available_compr_algs`, a 2-byte length and the
    /// record, each starting at a 4-byte boundary from the end of the superblock (`z_erofs_parse_cfgs`).
    /// Without COMPR_CFGS the image may only use LZ4, with the window from the superblock.
    static func loadCompressionConfiguration(
        source: any ImageSource, superBlock: SuperBlock, superBlockSize: Int
    ) throws -> CompressionConfiguration {
        var configuration = CompressionConfiguration()
        guard superBlock.incompatFeatures.contains(.compressionConfigs) else {
            configuration.lz4MaxDistance = superBlock.lz4MaxDistance
            return configuration
        }
        let bits = superBlock.availableCompressionAlgorithms
        let known = UInt16((1 << CompressionAlgorithm.allCases.count) - 1)
        guard bits & ~known == 0 else {
            throw EROFSError(
                .unsupported, "unknown compression algorithms 0x\(String(bits & ~known, radix: 16)) in the image")
        }
        configuration.algorithms = []
        var position = SuperBlockRecord.offset + UInt64(superBlockSize)
        for algorithm in CompressionAlgorithm.allCases where bits & (1 << algorithm.rawValue) != 0 {
            position = (position + 3) & ~3
            let lengthBytes = try source.readBytes(at: position, count: 2)
            let length = lengthBytes.le16(0) == 0 ? 65536 : Int(lengthBytes.le16(0))
            let record = try source.readBytes(at: position + 2, count: length)
            position += 2 + UInt64(length)
            try configuration.apply(record, for: algorithm, blockSize: superBlock.blockSize)
            configuration.algorithms.insert(algorithm)
        }
        return configuration
    }
}

extension CompressionConfiguration {
    /// Validates and applies one algorithm's record (`z_erofs_*_cfgs`), with the kernel's limits.
    fileprivate mutating func apply(_ record: [UInt8], for algorithm: CompressionAlgorithm, blockSize: Int) throws {
        func invalid(_ reason: String) -> EROFSError {
            EROFSError(.corrupted, "invalid \(algorithm) configuration: \(reason)", byteOffset: SuperBlockRecord.offset)
        }
        switch algorithm {
        case .lz4:
            guard record.count >= 4 else { throw invalid("record of \(record.count) bytes") }
            self.lz4MaxDistance = record.le16(0)
            let blocks = Int(record.le16(2))
            guard blocks <= Self.maximumPclusterBytes / blockSize else {
                throw invalid("max pcluster of \(blocks) blocks")
            }
            self.lz4MaxPclusterBlocks = max(blocks, 1)
        case .lzma:
            guard record.count >= 6 else { throw invalid("record of \(record.count) bytes") }
            self.lzmaDictionarySize = record.le32(0)
            guard record.le16(4) == 0 else { throw invalid("format \(record.le16(4))") }
            guard self.lzmaDictionarySize <= Self.maximumLZMADictionary else {
                throw invalid("dictionary of \(self.lzmaDictionarySize) bytes")
            }
        case .deflate:
            guard record.count >= 1 else { throw invalid("empty record") }
            // The kernel refuses only windows over MAX_WBITS (z_erofs_load_deflate_config).
            guard record[0] <= 15 else { throw invalid("window bits \(record[0]) over 15") }
            self.deflateWindowBits = record[0]
        case .zstd:
            guard record.count >= 2 else { throw invalid("record of \(record.count) bytes") }
            guard record[0] == 0 else { throw invalid("format \(record[0])") }
            guard Int(record[1]) + 10 <= 27 else { throw invalid("window log \(Int(record[1]) + 10)") }
            self.zstdWindowLog = record[1] + 10
        }
    }
}
