/// One contiguous run of a file's bytes and where they are stored: the seam between mapping (flat, chunk
/// and, later, compressed layouts) and reading, like the kernel's `struct erofs_map_blocks`.
struct Extent {
    enum Storage {
        /// Reads as zeros (a sparse chunk, or a plain file without blocks).
        case hole
        /// Raw bytes on the primary (id 0) or an extra device, starting at `offset`.
        case device(any ImageSource, offset: UInt64, deviceID: Int)
        /// Bytes in the metadata space (inline tails), starting at the location.
        case metadata(MetadataLocation)
    }

    /// File offset of the first byte of the extent.
    var logicalOffset: UInt64
    var length: UInt64
    var storage: Storage

    func contains(_ position: UInt64) -> Bool {
        position >= self.logicalOffset && position - self.logicalOffset < self.length
    }
}
