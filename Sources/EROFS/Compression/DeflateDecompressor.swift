import CCodecs

/// Raw DEFLATE pclusters (the kernel's `z_erofs_deflate_decompress`) through Debian's zlib.
enum DeflateDecompressor {
    static func decode(_ request: DecodeRequest) throws {
        let input = try PclusterDecoder.strippingZeroPadding(request, .deflate)
        var stream = z_stream()
        // inflateInit2 is a macro: call the underlying function. -15: raw deflate, any window up to 32 KiB.
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw EROFSError.corrupted("cannot start the deflate decoder", nid: request.nid)
        }
        defer { inflateEnd(&stream) }
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = UInt32(input.count)
        stream.next_out = request.output.baseAddress?.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = UInt32(request.output.count)
        var result = Z_OK
        while stream.avail_out > 0 {
            result = inflate(&stream, Z_SYNC_FLUSH)
            guard result == Z_OK else { break }
        }
        let produced = request.output.count - Int(stream.avail_out)
        guard produced == request.output.count, result == Z_OK || result == Z_STREAM_END else {
            throw EROFSError.corrupted(
                "deflate pcluster decoded to \(produced) of \(request.output.count) bytes (zlib \(result))",
                nid: request.nid)
        }
    }
}
