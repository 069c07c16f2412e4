/// One request to decode (part of) a pcluster: the kernel's `struct z_erofs_decompress_req`.
struct DecodeRequest {
    /// The encoded pcluster.
    var input: UnsafeRawBufferPointer
    /// Offset of the pcluster's first byte within its block (non-zero only for inline pclusters).
    var inputBlockOffset: Int
    /// Where the decoded bytes go; exactly `output.count` bytes must be produced.
    var output: UnsafeMutableRawBufferPointer
    /// Output is a prefix of the extent (or the pcluster is shared): the stream may continue past it.
    var partial: Bool
    /// File offset of the extent (interlaced plain pclusters rotate by it).
    var logicalOffset: UInt64
    var blockSize: Int
    var zeroPadding: Bool
    var configuration: CompressionConfiguration
    var nid: UInt64
    /// Reusable decoder state (one per ReadContext).
    var codecs: CodecState
}

enum PclusterDecoder {
    /// Decodes `request` with `format`; throws `EROFSError` (`corrupted`) when the stream is bad.
    static func decode(_ format: PclusterFormat, _ request: DecodeRequest) throws {
        switch format {
        case .shifted, .interlaced:
            try PlainPcluster.copy(request, interlaced: format == .interlaced)
        case .compressed(let algorithm):
            guard request.configuration.algorithms.contains(algorithm) else {
                throw EROFSError.corrupted(
                    "pcluster uses \(algorithm), which the image does not declare", nid: request.nid)
            }
            try DecompressionStatistics.measure(
                algorithm, input: request.input.count, output: request.output.count
            ) {
                switch algorithm {
                case .lz4: try LZ4Decompressor.decode(request)
                case .lzma: try LZMADecompressor.decode(request)
                case .deflate: try DeflateDecompressor.decode(request)
                case .zstd: try ZstdDecompressor.decode(request)
                }
            }
        }
    }

    /// Skips the zero padding before the encoded stream (`z_erofs_fixup_insize`): the stream is aligned to the
    /// end of the pcluster, and only the first block may hold padding.
    static func strippingZeroPadding(_ request: DecodeRequest, _ algorithm: CompressionAlgorithm) throws
        -> UnsafeRawBufferPointer
    {
        let window = min(request.input.count, request.blockSize - request.inputBlockOffset)
        var start = 0
        while start < window && request.input[start] == 0 { start += 1 }
        guard start < window else {
            throw EROFSError.corrupted("\(algorithm) pcluster is all zero padding", nid: request.nid)
        }
        return UnsafeRawBufferPointer(rebasing: request.input[start...])
    }
}

/// Plain (uncompressed) pclusters, shifted or interlaced (`z_erofs_transform_plain`).
enum PlainPcluster {
    static func copy(_ request: DecodeRequest, interlaced: Bool) throws {
        let output = request.output
        let input = request.input
        guard output.count <= input.count else {
            throw EROFSError.corrupted(
                "plain pcluster of \(input.count) bytes cannot hold \(output.count)", nid: request.nid)
        }
        var done = 0
        if interlaced {
            // The extent's first bytes, up to the end of its block, sit at the end of the pcluster.
            let head = min(request.blockSize - Int(request.logicalOffset % UInt64(request.blockSize)), output.count)
            if head > 0 {
                UnsafeMutableRawBufferPointer(rebasing: output[0..<head])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: input[(input.count - head)...]))
            }
            done = head
        }
        if done < output.count {
            UnsafeMutableRawBufferPointer(rebasing: output[done...])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: input[0..<(output.count - done)]))
        }
    }
}
