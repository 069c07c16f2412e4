import CCodecs

/// LZ4 pclusters through Debian's liblz4 (`z_erofs_lz4_decompress`).
enum LZ4Decompressor {
    static func decode(_ request: DecodeRequest) throws {
        let input = request.zeroPadding ? try PclusterDecoder.strippingZeroPadding(request, .lz4) : request.input
        guard let source = input.baseAddress, let destination = request.output.baseAddress,
            input.count <= Int(Int32.max), request.output.count <= Int(Int32.max)
        else {
            throw EROFSError.corrupted("empty lz4 pcluster", nid: request.nid)
        }
        let sourcePointer = source.assumingMemoryBound(to: CChar.self)
        let destinationPointer = destination.assumingMemoryBound(to: CChar.self)
        let want = Int32(request.output.count)
        let produced: Int32
        // Without zero padding (legacy images) a pcluster may hold more than its extent: decode a prefix.
        if request.partial || !request.zeroPadding {
            produced = LZ4_decompress_safe_partial(sourcePointer, destinationPointer, Int32(input.count), want, want)
        } else {
            produced = LZ4_decompress_safe(sourcePointer, destinationPointer, Int32(input.count), want)
        }
        guard produced == want else {
            throw EROFSError.corrupted(
                "lz4 pcluster decoded to \(produced) bytes, expected \(want)", nid: request.nid)
        }
    }
}
