import CCodecs

/// Raw DEFLATE pclusters (the kernel's `z_erofs_deflate_decompress`) through Debian's zlib.
enum DeflateDecompressor {
    static func decode(_ request: DecodeRequest) throws {
        let input = try PclusterDecoder.strippingZeroPadding(request, .deflate)
        let outcome = try request.codecs.withInflate { stream -> (Int32, UInt32) in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = UInt32(input.count)
            stream.next_out = request.output.baseAddress?.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = UInt32(request.output.count)
            var result = Z_OK
            while stream.avail_out > 0 {
                result = inflate(&stream, Z_SYNC_FLUSH)
                guard result == Z_OK else { break }
            }
            return (result, stream.avail_out)
        }
        guard let (result, remaining) = outcome else {
            throw EROFSError.corrupted("cannot start the deflate decoder", nid: request.nid)
        }
        let produced = request.output.count - Int(remaining)
        guard produced == request.output.count, result == Z_OK || result == Z_STREAM_END else {
            throw EROFSError.corrupted(
                "deflate pcluster decoded to \(produced) of \(request.output.count) bytes (zlib \(result))",
                nid: request.nid)
        }
    }
}
