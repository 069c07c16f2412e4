/// Little-endian loads from a byte array whose length the caller has already checked.
///
/// Every on-disk record parser first checks `bytes.count` against the record size and throws when short;
/// these loads then cannot go out of bounds (the check-then-load rule of `swift-certificates`).
extension Array where Element == UInt8 {
    @inline(__always)
    func le16(_ offset: Int) -> UInt16 {
        UInt16(self[offset]) | UInt16(self[offset + 1]) << 8
    }

    @inline(__always)
    func le32(_ offset: Int) -> UInt32 {
        UInt32(self[offset]) | UInt32(self[offset + 1]) << 8 | UInt32(self[offset + 2]) << 16
            | UInt32(self[offset + 3]) << 24
    }

    @inline(__always)
    func le64(_ offset: Int) -> UInt64 {
        UInt64(self.le32(offset)) | UInt64(self.le32(offset + 4)) << 32
    }
}
