/// Cuts a stream of bytes at content-defined boundaries (FastCDC, Xia et al. 2016/2020): a gear hash rolls
/// over the bytes, and a boundary falls where its top bits are zero. The same content gets the same
/// boundaries wherever it sits in a file, so content shifted by an insertion is still found in equal
/// chunks, which fixed-offset pages do not find.
///
/// Normalized chunking keeps sizes near the average: below it the hash must match `bits + 2` bits, above it
/// only `bits - 2`; no chunk is shorter than ``minimumBytes`` (but a file's last) or longer than
/// ``maximumBytes``. The gear table is fixed (splitmix64 from a constant seed): boundaries, and so chunk
/// identities, are the same in every process and every release that keeps the table.
public struct ContentDefinedChunker: Sendable {
    public let minimumBytes: Int
    public let averageBytes: Int
    public let maximumBytes: Int
    private let strictMask: UInt64
    private let looseMask: UInt64

    /// - Parameter averageBytes: the average chunk size, a power of two from 256 bytes; the minimum is a
    ///   quarter of it, the maximum four times it.
    public init(averageBytes: Int = 4096) {
        precondition(averageBytes >= 256 && averageBytes & (averageBytes - 1) == 0, "a power of two from 256")
        let bits = averageBytes.trailingZeroBitCount
        self.averageBytes = averageBytes
        self.minimumBytes = averageBytes / 4
        self.maximumBytes = averageBytes * 4
        // The top bits of the gear hash depend on the last 64 bytes.
        self.strictMask = ~(UInt64.max >> (bits + 2))
        self.looseMask = ~(UInt64.max >> (bits - 2))
    }

    /// The length of the chunk that starts at the beginning of `bytes`: up to a boundary, or all of `bytes`
    /// when `isEnd` (the file's last chunk) or when they reach ``maximumBytes``; nil when more bytes are
    /// needed to find the boundary.
    public func chunkLength(_ bytes: UnsafeRawBufferPointer, isEnd: Bool) -> Int? {
        let count = bytes.count
        if count <= self.minimumBytes { return isEnd && count > 0 ? count : nil }
        let normal = min(self.averageBytes, count)
        let limit = min(self.maximumBytes, count)
        let (strictMask, looseMask) = (self.strictMask, self.looseMask)
        // The table and the bytes as plain pointers: no reference counting per byte in the hot loop.
        let boundary = Self.gear.withUnsafeBufferPointer { gear -> Int? in
            let input = bytes.assumingMemoryBound(to: UInt8.self)
            var hash: UInt64 = 0
            var index = self.minimumBytes
            while index < normal {
                hash = (hash << 1) &+ gear[Int(input[index])]
                if hash & strictMask == 0 { return index + 1 }
                index += 1
            }
            while index < limit {
                hash = (hash << 1) &+ gear[Int(input[index])]
                if hash & looseMask == 0 { return index + 1 }
                index += 1
            }
            return nil
        }
        if let boundary { return boundary }
        return limit == self.maximumBytes || isEnd ? limit : nil
    }

    /// Calls `body` with each chunk of `bytes`, a whole file's content, in order.
    public func forEachChunk(of bytes: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> Void)
        rethrows
    {
        var start = 0
        while start < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[start...])
            let length = self.chunkLength(rest, isEnd: true)!
            try body(UnsafeRawBufferPointer(rebasing: rest[0..<length]))
            start += length
        }
    }

    /// 256 fixed pseudo-random words (splitmix64 from seed 0x5045_4745_5348_4152, "PAGESHAR").
    static let gear: [UInt64] = {
        var state: UInt64 = 0x5045_4745_5348_4152
        return (0..<256).map { _ in
            state &+= 0x9E37_79B9_7F4A_7C15
            var value = state
            value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
            value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
            return value ^ (value >> 31)
        }
    }()
}
