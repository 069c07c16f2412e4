/// A `Range: bytes=…` request resolved against a representation of `length` bytes (RFC 9110 §14).
enum ByteRangeRequest: Equatable {
    /// Serve the whole representation with 200: no Range header, a syntactically invalid one or another unit
    /// (which RFC 9110 §14.2 says to ignore), or one refused as abusive (see ``resolve(_:length:maximumRanges:)``).
    case whole
    /// Serve these ranges with 206 (one: a plain body with `Content-Range`; several: `multipart/byteranges`).
    case partial([ClosedRange<UInt64>])
    /// No range overlaps the representation: 416 with `Content-Range: bytes */length`.
    case unsatisfiable

    /// Resolves the `Range` header value `header` for `length` bytes.
    ///
    /// Ranges are served in the order asked. A request for more than `maximumRanges` ranges, for overlapping
    /// ranges, or for more bytes in all than the representation holds is ignored as RFC 9110 §14.2 allows
    /// (200 with the whole body, as nginx does past `max_ranges`) rather than refused: a broken or hostile
    /// client then costs one pass over the file at most.
    static func resolve(_ header: String?, length: UInt64, maximumRanges: Int) -> ByteRangeRequest {
        guard let header else { return .whole }
        var text = Substring(header).drop(while: { $0 == " " || $0 == "\t" })
        guard text.count > 6, text.prefix(6).lowercased() == "bytes=" else { return .whole }
        text = text.dropFirst(6)
        var ranges: [ClosedRange<UInt64>] = []
        var requested = 0
        for spec in text.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = spec.trimmingWhitespace()
            if trimmed.isEmpty { continue }  // RFC 9110 list syntax tolerates empty elements
            requested += 1
            if requested > maximumRanges { return .whole }
            guard let dash = trimmed.firstIndex(of: "-") else { return .whole }
            let first = trimmed[..<dash]
            let last = trimmed[trimmed.index(after: dash)...]
            if first.isEmpty {
                guard let suffix = Self.number(last) else { return .whole }
                if suffix == 0 || length == 0 { continue }  // unsatisfiable element
                ranges.append((length - min(suffix, length))...(length - 1))
            } else {
                guard let start = Self.number(first) else { return .whole }
                var end = length &- 1
                if !last.isEmpty {
                    guard let value = Self.number(last), value >= start else { return .whole }
                    end = value
                }
                if start >= length { continue }  // unsatisfiable element
                ranges.append(start...min(end, length - 1))
            }
        }
        guard requested > 0 else { return .whole }
        guard !ranges.isEmpty else { return .unsatisfiable }
        var total: UInt64 = 0
        for range in ranges { total += range.upperBound - range.lowerBound + 1 }
        if total > length { return .whole }
        if ranges.count > 1 {
            let sorted = ranges.sorted { $0.lowerBound < $1.lowerBound }
            for index in 1..<sorted.count where sorted[index].lowerBound <= sorted[index - 1].upperBound {
                return .whole
            }
        }
        return .partial(ranges)
    }

    /// A non-negative decimal without sign or spaces, at most 19 digits.
    private static func number(_ text: Substring) -> UInt64? {
        guard !text.isEmpty, text.count <= 19, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return UInt64(text)
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace).
    func trimmingWhitespace() -> Substring {
        var start = self.startIndex
        var end = self.endIndex
        while start < end, self[start] == " " || self[start] == "\t" { self.formIndex(after: &start) }
        while end > start {
            let before = self.index(before: end)
            guard self[before] == " " || self[before] == "\t" else { break }
            end = before
        }
        return self[start..<end]
    }
}
