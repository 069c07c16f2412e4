/// Positional reads from an image or an extra device: the only way the EROFS reader touches bytes.
///
/// The shape of erofs-utils' `erofs_vfops.pread`: no shared offset, so one source serves many threads.
/// A read that cannot be satisfied completely is an error (``EROFSError/Code/ioFailure``), never a
/// short result, so callers never see uninitialised bytes.
public protocol ImageSource: Sendable {
    /// Total size in bytes.
    var size: UInt64 { get }
    /// Fills `buffer` completely with the bytes starting at `offset`. Throws `EROFSError` when the range
    /// lies (partly) outside the source or the underlying read fails.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws
    /// Why the bytes may no longer be the ones the source was opened with (its file was written to since:
    /// size or modification time differ), or nil. Sources in memory never change.
    func contentChange() -> String?
}

extension ImageSource {
    public func contentChange() -> String? { nil }

    /// Checks that `count` bytes at `offset` lie inside the source.
    @inline(__always)
    func checkRange(_ offset: UInt64, _ count: Int) throws {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(count))
        guard !overflow, end <= self.size else {
            throw EROFSError(
                .ioFailure, "read of \(count) bytes at \(offset) past the end of the image (\(self.size) bytes)",
                byteOffset: offset)
        }
    }

    /// Reads `count` bytes at `offset` into a new array (for small metadata reads).
    func readBytes(at offset: UInt64, count: Int) throws -> [UInt8] {
        guard count > 0 else { return [] }
        try self.checkRange(offset, count)
        return try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            try self.read(into: UnsafeMutableRawBufferPointer(buffer), at: offset)
            initialized = count
        }
    }
}
