import CCodecs

/// MicroLZMA pclusters (the kernel's `z_erofs_lzma_decompress`) through Debian's liblzma.
enum LZMADecompressor {
    static func decode(_ request: DecodeRequest) throws {
        let input = try PclusterDecoder.strippingZeroPadding(request, .lzma)
        var stream = lzma_stream()
        let dictionary = max(request.configuration.lzmaDictionarySize, 4096)
        guard
            lzma_microlzma_decoder(
                &stream, UInt64(input.count), UInt64(request.output.count), request.partial ? 0 : 1, dictionary)
                == LZMA_OK
        else {
            throw EROFSError.corrupted("cannot start the lzma decoder", nid: request.nid)
        }
        defer { lzma_end(&stream) }
        stream.next_in = input.baseAddress?.assumingMemoryBound(to: UInt8.self)
        stream.avail_in = input.count
        stream.next_out = request.output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        stream.avail_out = request.output.count
        var result = LZMA_OK
        while stream.avail_out > 0 {
            result = lzma_code(&stream, LZMA_FINISH)
            guard result == LZMA_OK else { break }
        }
        let produced = request.output.count - stream.avail_out
        guard produced == request.output.count, result == LZMA_OK || result == LZMA_STREAM_END else {
            throw EROFSError.corrupted(
                "lzma pcluster decoded to \(produced) of \(request.output.count) bytes (liblzma \(result.rawValue))",
                nid: request.nid)
        }
    }
}
