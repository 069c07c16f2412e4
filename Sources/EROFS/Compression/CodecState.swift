import CCodecs

/// Decoder state kept across pclusters so that decoding allocates once per reader, not once per pcluster:
/// a Zstandard context, a zlib stream reset between streams, and an liblzma stream whose MicroLZMA decoder
/// re-initialisation reuses its memory.
final class CodecState {
    private var zstdContext: OpaquePointer?
    private var zlibStream = z_stream()
    private var zlibReady = false
    private var lzmaStream = lzma_stream()

    init() {}

    deinit {
        if let zstdContext { ZSTD_freeDCtx(zstdContext) }
        if self.zlibReady { inflateEnd(&self.zlibStream) }
        lzma_end(&self.lzmaStream)
    }

    /// A Zstandard decompression context, reset for a new frame.
    func zstd() -> OpaquePointer? {
        if let context = self.zstdContext {
            ZSTD_DCtx_reset(context, ZSTD_reset_session_only)
            return context
        }
        self.zstdContext = ZSTD_createDCtx()
        return self.zstdContext
    }

    /// The liblzma stream; re-initialising a decoder on it reuses its memory.
    func withLZMA<Result>(_ body: (inout lzma_stream) -> Result) -> Result {
        body(&self.lzmaStream)
    }

    /// A raw-deflate zlib stream, reset for a new stream; `body` runs with it.
    func withInflate<Result>(_ body: (inout z_stream) throws -> Result) throws -> Result? {
        if self.zlibReady {
            guard inflateReset(&self.zlibStream) == Z_OK else { return nil }
        } else {
            // inflateInit2 is a macro: call the underlying function. -15: raw deflate, windows up to 32 KiB.
            guard inflateInit2_(&self.zlibStream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK
            else { return nil }
            self.zlibReady = true
        }
        return try body(&self.zlibStream)
    }
}
