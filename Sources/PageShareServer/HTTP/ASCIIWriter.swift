/// Builds a short ASCII header value as bytes, then makes one string of it: for values written on every
/// response (entity tags, `Content-Range`), where string interpolation would make a string per part.
struct ASCIIWriter {
    private var bytes: [UInt8] = []

    init(capacity: Int) { self.bytes.reserveCapacity(capacity) }

    mutating func text(_ text: StaticString) {
        text.withUTF8Buffer { self.bytes.append(contentsOf: $0) }
    }

    /// Lower-case hex, two digits a byte.
    mutating func hex(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            self.bytes.append(Hex.digit(byte >> 4))
            self.bytes.append(Hex.digit(byte & 0xF))
        }
    }

    /// `value` in decimal.
    mutating func decimal(_ value: UInt64) {
        // Digits from the end into stack memory; `% 10` by a constant compiles to a multiplication, where a
        // variable radix costs a 64-bit division per digit.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var index = digits.count
            var rest = value
            repeat {
                index -= 1
                digits[index] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            } while rest > 0
            self.bytes.append(contentsOf: UnsafeMutableBufferPointer(rebasing: digits[index...]))
        }
    }

    /// `value` in lower-case hex, no leading zeros.
    mutating func hexadecimal(_ value: UInt64) {
        let digitCount = max(1, (64 - value.leadingZeroBitCount + 3) / 4)
        for position in stride(from: digitCount - 1, through: 0, by: -1) {
            self.bytes.append(Hex.digit(UInt8(truncatingIfNeeded: value >> (position * 4)) & 0xF))
        }
    }

    var string: String { String(decoding: self.bytes, as: UTF8.self) }
}
