import CCodecs

/// MicroLZMA pclusters (the kernel's `z_erofs_lzma_decompress`) through Debian's liblzma.
enum LZMADecompressor {
    static func decode(_ request: DecodeRequest) throws {
        let input = try PclusterDecoder.strippingZeroPadding(request, .lzma)
        let dictionary = max(request.configuration.lzmaDictionarySize, 4096)
        let outcome = request.codecs.withLZMA { stream -> (lzma_ret, Int)? in
            // Exact size unless only a prefix is wanted (partial decoding).
            let exact: lzma_bool = request.partial ? 0 : 1
            let start = lzma_microlzma_decoder(
                &stream, UInt64(input.count), UInt64(request.output.count), exact, dictionary)
            guard start == LZMA_OK else { return nil }
            stream.next_in = input.baseAddress?.assumingMemoryBound(to: UInt8.self)
            stream.avail_in = input.count
            stream.next_out = request.output.baseAddress?.assumingMemoryBound(to: UInt8.self)
            stream.avail_out = request.output.count
            var result = LZMA_OK
            while stream.avail_out > 0 {
                result = lzma_code(&stream, LZMA_FINISH)
                guard result == LZMA_OK else { break }
            }
            return (result, request.output.count - stream.avail_out)
        }
        guard let (result, produced) = outcome else {
            throw EROFSError.corrupted("cannot start the lzma decoder", nid: request.nid)
        }
        guard produced == request.output.count, result == LZMA_OK || result == LZMA_STREAM_END else {
            throw EROFSError.corrupted(
                "lzma pcluster decoded to \(produced) of \(request.output.count) bytes (liblzma \(result.rawValue))",
                nid: request.nid)
        }
    }
}
