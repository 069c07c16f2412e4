import CXXHash

/// What a chunk of content is known by inside a domain: XXH3-128 of its bytes (Debian's libxxhash) and its
/// length. Equal identities are a strong hint that two chunks hold the same bytes; sharing still compares
/// the bytes before it joins one chunk to another, so that no hash collision (and no crafted image) can
/// place content under another's chunk.
public struct ChunkIdentity: Hashable, Sendable, CustomStringConvertible {
    public let low: UInt64
    public let high: UInt64
    public let length: Int

    /// The identity of `bytes`.
    public init(of bytes: UnsafeRawBufferPointer) {
        let hash = XXH3_128bits(bytes.baseAddress, bytes.count)
        self.low = hash.low64
        self.high = hash.high64
        self.length = bytes.count
    }

    init(low: UInt64, high: UInt64, length: Int) {
        self.low = low
        self.high = high
        self.length = length
    }

    /// `xxh3-128:` with the hash as XXH128's canonical (big-endian) hex, and the length.
    public var description: String {
        let hex = [self.high, self.low].map { value in
            let digits = String(value, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }
        return "xxh3-128:\(hex.joined())/\(self.length)"
    }
}
