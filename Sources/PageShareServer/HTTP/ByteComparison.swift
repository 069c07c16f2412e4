import Glibc

/// Comparisons of bytes with fixed ASCII text, by `memcmp`: the generic `elementsEqual` and `starts(with:)`
/// over a string's UTF-8 view show in a request's profile (field names, route prefixes).
extension UnsafeRawBufferPointer {
    /// Whether these bytes are exactly `text`.
    func isEqual(to text: StaticString) -> Bool {
        self.count == text.utf8CodeUnitCount && self.hasPrefix(text)
    }

    /// Whether these bytes begin with `text`.
    func hasPrefix(_ text: StaticString) -> Bool {
        text.withUTF8Buffer { prefix in
            self.count >= prefix.count
                && (prefix.isEmpty || memcmp(self.baseAddress!, prefix.baseAddress!, prefix.count) == 0)
        }
    }
}

extension String {
    /// Whether the string's UTF-8 begins with `text`'s bytes.
    func hasUTF8Prefix(_ text: StaticString) -> Bool {
        self.utf8.withContiguousStorageIfAvailable { UnsafeRawBufferPointer($0).hasPrefix(text) }
            ?? text.withUTF8Buffer { self.utf8.starts(with: $0) }
    }
}
