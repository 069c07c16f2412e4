/// What tells one build of an image from another without reading it: the superblock's uuid, build time and
/// checksum. Plain values: passing a stamp around retains nothing (an ``Image`` holds a dozen references).
public struct ImageStamp: Sendable, Equatable {
    /// The uuid's first 8 bytes, big-endian (the first byte is the most significant).
    public let uuidHigh: UInt64
    /// The uuid's last 8 bytes, big-endian.
    public let uuidLow: UInt64
    /// The build time (`epoch`).
    public let epoch: UInt64
    /// The superblock checksum (0 without one).
    public let checksum: UInt32

    /// Calls `body` with the uuid's 16 bytes, in order.
    public func withUUIDBytes<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        withUnsafeBytes(of: (self.uuidHigh.bigEndian, self.uuidLow.bigEndian)) { body($0) }
    }
}

extension SuperBlock {
    /// This image build's stamp.
    public var stamp: ImageStamp {
        var halves: (UInt64, UInt64) = (0, 0)
        for (index, byte) in self.uuid.prefix(16).enumerated() {
            let shift = UInt64((7 - index % 8) * 8)
            if index < 8 { halves.0 |= UInt64(byte) << shift } else { halves.1 |= UInt64(byte) << shift }
        }
        return ImageStamp(uuidHigh: halves.0, uuidLow: halves.1, epoch: self.epoch, checksum: self.checksum)
    }
}
