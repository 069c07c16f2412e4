/// A string as a dictionary key compared and hashed by its UTF-8 bytes.
///
/// Swift's `String ==` is Unicode canonical equivalence: `café` (NFC) equals `cafe\u{301}` (NFD). Names in
/// an image, paths and image ids are bytes, and two different byte sequences are two different things: a
/// table keyed by `String` would answer for one what was stored for the other. Every table keyed by a
/// path, a name or an image id uses this key.
public struct ByteKey: Hashable, Sendable, CustomStringConvertible {
    /// The string, as given.
    public let string: String

    public init(_ string: String) { self.string = string }

    public static func == (lhs: ByteKey, rhs: ByteKey) -> Bool {
        var left = lhs.string
        var right = rhs.string
        // Native strings are contiguous UTF-8: compare the storage directly.
        return left.withUTF8 { a in right.withUTF8 { b in a.count == b.count && a.elementsEqual(b) } }
    }

    public func hash(into hasher: inout Hasher) {
        var string = self.string
        string.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    public var description: String { self.string }
}
