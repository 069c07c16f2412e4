/// Deterministic pseudo-random bytes (xorshift64), so that a failing test reproduces with its seed.
public enum PseudoRandomBytes {
    public static func make(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed | 1
        return (0..<count).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }
}
