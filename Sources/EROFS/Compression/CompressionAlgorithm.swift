/// A compression algorithm an image may use (`Z_EROFS_COMPRESSION_*`).
public enum CompressionAlgorithm: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case lz4 = 0
    case lzma = 1
    case deflate = 2
    case zstd = 3

    public var description: String {
        switch self {
        case .lz4: "lz4"
        case .lzma: "lzma"
        case .deflate: "deflate"
        case .zstd: "zstd"
        }
    }
}

/// How one pcluster is encoded: by an algorithm, or stored plain (shifted or interlaced).
enum PclusterFormat: Sendable, Hashable, CustomStringConvertible {
    case compressed(CompressionAlgorithm)
    /// Plain data starting at the pcluster's first byte.
    case shifted
    /// Plain data rotated within the block: the first bytes of the extent sit at the end of the pcluster.
    case interlaced

    var description: String {
        switch self {
        case .compressed(let algorithm): algorithm.description
        case .shifted: "plain (shifted)"
        case .interlaced: "plain (interlaced)"
        }
    }
}
