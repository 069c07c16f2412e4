import CCodecs

/// Zstandard pclusters (the kernel's `z_erofs_zstd_decompress`) through Debian's libzstd.
enum ZstdDecompressor {
    static func decode(_ request: DecodeRequest) throws {
        let input = try PclusterDecoder.strippingZeroPadding(request, .zstd)
        guard let context = request.codecs.zstd() else {
            throw EROFSError(.ioFailure, "cannot allocate a zstd context", nid: request.nid)
        }
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var outBuffer = ZSTD_outBuffer(dst: request.output.baseAddress, size: request.output.count, pos: 0)
        while outBuffer.pos < outBuffer.size {
            let before = (inBuffer.pos, outBuffer.pos)
            let remaining = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
            if ZSTD_isError(remaining) != 0 {
                let name = String(cString: ZSTD_getErrorName(remaining))
                throw EROFSError.corrupted("zstd pcluster: \(name)", nid: request.nid)
            }
            // The frame ended, or the decoder can make no more progress on this input.
            if remaining == 0 || before == (inBuffer.pos, outBuffer.pos) { break }
        }
        guard outBuffer.pos == outBuffer.size else {
            throw EROFSError.corrupted(
                "zstd pcluster decoded to \(outBuffer.pos) of \(outBuffer.size) bytes", nid: request.nid)
        }
    }
}
