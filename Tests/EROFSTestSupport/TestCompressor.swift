import CCodecs
import EROFS

/// Compresses one logical cluster for ``SyntheticImage`` with Debian's libraries, the way mkfs.erofs does
/// for each algorithm (raw LZ4 block, MicroLZMA, raw DEFLATE, a Zstandard frame). Returns nil when the
/// result does not fit in `capacity` bytes (the cluster is then stored plain).
public enum TestCompressor {
    public static func compress(_ input: [UInt8], with algorithm: CompressionAlgorithm, capacity: Int) -> [UInt8]? {
        switch algorithm {
        case .lz4: return self.lz4(input, capacity: capacity)
        case .lzma: return self.microLZMA(input, capacity: capacity)
        case .deflate: return self.deflate(input, capacity: capacity)
        case .zstd: return self.zstd(input, capacity: capacity)
        }
    }

    private static func lz4(_ input: [UInt8], capacity: Int) -> [UInt8]? {
        var output = [UInt8](repeating: 0, count: capacity)
        let count = input.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { destination in
                LZ4_compress_default(
                    source.baseAddress!.assumingMemoryBound(to: CChar.self),
                    destination.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(input.count), Int32(capacity))
            }
        }
        return count > 0 ? Array(output[0..<Int(count)]) : nil
    }

    private static func microLZMA(_ input: [UInt8], capacity: Int) -> [UInt8]? {
        var options = lzma_options_lzma()
        guard lzma_lzma_preset(&options, 6) == 0 else { return nil }
        options.dict_size = 64 << 10
        var stream = lzma_stream()
        guard lzma_microlzma_encoder(&stream, &options) == LZMA_OK else { return nil }
        defer { lzma_end(&stream) }
        var output = [UInt8](repeating: 0, count: capacity)
        let result: lzma_ret = input.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { destination in
                stream.next_in = source.baseAddress!.assumingMemoryBound(to: UInt8.self)
                stream.avail_in = input.count
                stream.next_out = destination.baseAddress!.assumingMemoryBound(to: UInt8.self)
                stream.avail_out = capacity
                return lzma_code(&stream, LZMA_FINISH)
            }
        }
        // MicroLZMA fills a fixed output; it must have taken every input byte to be usable here.
        guard result == LZMA_STREAM_END, Int(stream.total_in) == input.count else { return nil }
        return Array(output[0..<Int(stream.total_out)])
    }

    private static func deflate(_ input: [UInt8], capacity: Int) -> [UInt8]? {
        var stream = z_stream()
        guard
            deflateInit2_(
                &stream, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
                == Z_OK
        else { return nil }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: capacity)
        var source = input
        let result = source.withUnsafeMutableBytes { sourceBuffer in
            output.withUnsafeMutableBytes { destination in
                stream.next_in = sourceBuffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_in = UInt32(input.count)
                stream.next_out = destination.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = UInt32(capacity)
                return CCodecs.deflate(&stream, Z_FINISH)
            }
        }
        guard result == Z_STREAM_END else { return nil }
        return Array(output[0..<Int(stream.total_out)])
    }

    private static func zstd(_ input: [UInt8], capacity: Int) -> [UInt8]? {
        var output = [UInt8](repeating: 0, count: max(capacity, Int(ZSTD_compressBound(input.count))))
        let count = input.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { destination in
                ZSTD_compress(destination.baseAddress, destination.count, source.baseAddress, input.count, 3)
            }
        }
        guard ZSTD_isError(count) == 0, count <= capacity else { return nil }
        return Array(output[0..<count])
    }
}
