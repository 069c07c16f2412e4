/// Reusable state for reading compressed files: scratch buffers and the last decoded extent, so that
/// sequential reads decode each pcluster once. Not thread-safe: use one per thread or task.
public final class ReadContext {
    var input: UnsafeMutableRawBufferPointer = .init(start: nil, count: 0)
    var output: UnsafeMutableRawBufferPointer = .init(start: nil, count: 0)
    /// What `output` holds: (image, nid, extent offset, decoded byte count). The image is held strongly so
    /// that its identity cannot be reused by another image while cached.
    var decoded: (image: ImageIdentity, nid: UInt64, logicalOffset: UInt64, count: Int)?
    /// The compression info of the last compressed inode read, and its image.
    var info: (image: ImageIdentity, nid: UInt64, info: CompressionInfo)?
    /// Decoder state reused across pclusters.
    let codecs = CodecState()

    public init() {}

    /// The bytes of `inode` (of `image`) the last decode through this context produced, clipped to the file:
    /// a whole compressed extent, of which a read may have wanted only a part. Nil when the last read decoded
    /// nothing here (uncompressed data, holes, fragments, an extent decoded straight into the caller's buffer).
    public func decodedRange(of inode: Inode, in image: Image) -> Range<UInt64>? {
        guard let decoded = self.decoded, decoded.image === image.identity, decoded.nid == inode.nid,
            decoded.logicalOffset < inode.size
        else { return nil }
        return decoded.logicalOffset..<min(decoded.logicalOffset + UInt64(decoded.count), inode.size)
    }

    deinit {
        self.input.deallocate()
        self.output.deallocate()
    }

    func inputBuffer(_ count: Int) -> UnsafeMutableRawBufferPointer {
        if self.input.count < count {
            self.input.deallocate()
            self.input = .allocate(byteCount: count, alignment: 16)
        }
        return UnsafeMutableRawBufferPointer(rebasing: self.input[0..<count])
    }

    func outputBuffer(_ count: Int) -> UnsafeMutableRawBufferPointer {
        if self.output.count < count {
            self.output.deallocate()
            self.output = .allocate(byteCount: count, alignment: 16)
            self.decoded = nil
        }
        return UnsafeMutableRawBufferPointer(rebasing: self.output[0..<count])
    }
}
