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
        // Byte by byte over the UTF-8: this runs for every range request.
        var text = Substring(header).utf8.drop(while: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") })
        guard text.count > 6, text.prefix(6).elementsEqual("bytes=".utf8, by: { Self.lowercased($0) == $1 }) else {
            return .whole
        }
        text = text.dropFirst(6)
        var ranges: [ClosedRange<UInt64>] = []
        var requested = 0
        while true {
            let comma = text.firstIndex(of: UInt8(ascii: ",")) ?? text.endIndex
            let spec = Self.trimmingWhitespace(text[..<comma])
            if !spec.isEmpty {  // RFC 9110 list syntax tolerates empty elements
                requested += 1
                if requested > maximumRanges { return .whole }
                guard let dash = spec.firstIndex(of: UInt8(ascii: "-")) else { return .whole }
                let first = spec[..<dash]
                let last = spec[spec.index(after: dash)...]
                if first.isEmpty {
                    guard let suffix = Self.number(last) else { return .whole }
                    if suffix != 0 && length != 0 {  // else an unsatisfiable element
                        ranges.append((length - min(suffix, length))...(length - 1))
                    }
                } else {
                    guard let start = Self.number(first) else { return .whole }
                    var end = length &- 1
                    if !last.isEmpty {
                        guard let value = Self.number(last), value >= start else { return .whole }
                        end = value
                    }
                    if start < length { ranges.append(start...min(end, length - 1)) }  // else unsatisfiable
                }
            }
            guard comma < text.endIndex else { break }
            text = text[text.index(after: comma)...]
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
    private static func number(_ text: Substring.UTF8View.SubSequence) -> UInt64? {
        guard !text.isEmpty, text.count <= 19 else { return nil }
        var value: UInt64 = 0
        for byte in text {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + UInt64(byte - UInt8(ascii: "0"))  // 19 digits cannot overflow
        }
        return value
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
    }

    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace).
    private static func trimmingWhitespace(_ bytes: Substring.UTF8View.SubSequence) -> Substring.UTF8View.SubSequence {
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end, bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t") {
            bytes.formIndex(after: &start)
        }
        while end > start {
            let before = bytes.index(before: end)
            guard bytes[before] == UInt8(ascii: " ") || bytes[before] == UInt8(ascii: "\t") else { break }
            end = before
        }
        return bytes[start..<end]
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
