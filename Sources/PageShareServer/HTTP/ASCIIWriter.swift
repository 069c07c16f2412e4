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
            self.bytes.append(Self.digit(byte >> 4))
            self.bytes.append(Self.digit(byte & 0xF))
        }
    }

    /// `value` in `radix` (2-16), lower-case digits, no leading zeros.
    mutating func number(_ value: UInt64, radix: UInt64) {
        var length = 1
        var scale = value
        while scale >= radix {
            scale /= radix
            length += 1
        }
        let start = self.bytes.count
        self.bytes.append(contentsOf: repeatElement(0, count: length))
        var rest = value
        for index in stride(from: start + length - 1, through: start, by: -1) {
            self.bytes[index] = Self.digit(UInt8(rest % radix))
            rest /= radix
        }
    }

    var string: String { String(decoding: self.bytes, as: UTF8.self) }

    private static func digit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}
