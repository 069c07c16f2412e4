/// A `Range: bytes=…` request resolved against a representation of `length` bytes (RFC 9110 §14).
enum ByteRangeRequest: Equatable {
    /// Serve the whole representation with 200: no Range header, a syntactically invalid one or another unit
    /// (which RFC 9110 §14.2 says to ignore), or one refused as abusive (see ``resolve(_:length:maximumRanges:)``).
    case whole
    /// Serve these ranges with 206 (one: a plain body with `Content-Range`; several: `multipart/byteranges`).
    case partial(SmallList<ClosedRange<UInt64>>)
    /// No range overlaps the representation: 416 with `Content-Range: bytes */length`.
    case unsatisfiable

    /// Resolves the `Range` header value `header` for `length` bytes.
    ///
    /// Ranges are served in the order asked. A request for more than `maximumRanges` ranges, for overlapping
    /// ranges, or for more bytes in all than the representation holds is ignored as RFC 9110 §14.2 allows
    /// (200 with the whole body, as nginx does past `max_ranges`) rather than refused: a broken or hostile
    /// client then costs one pass over the file at most.
    static func resolve(_ header: String?, length: UInt64, maximumRanges: Int) -> ByteRangeRequest {
        guard var header else { return .whole }
        // Over the UTF-8 bytes in place, with integer indices: this runs for every range request.
        return header.withUTF8 { Self.resolve(bytes: $0, length: length, maximumRanges: maximumRanges) }
    }

    private static func resolve(bytes: UnsafeBufferPointer<UInt8>, length: UInt64, maximumRanges: Int)
        -> ByteRangeRequest
    {
        var index = Self.skippingWhitespace(bytes, from: 0, to: bytes.count)
        let unit = "bytes=".utf8
        guard bytes.count - index > unit.count,
            bytes[index..<index + unit.count].elementsEqual(unit, by: { Self.lowercased($0) == $1 })
        else { return .whole }
        index += unit.count
        var ranges = SmallList<ClosedRange<UInt64>>()
        var requested = 0
        while true {
            let comma = bytes[index...].firstIndex(of: UInt8(ascii: ",")) ?? bytes.endIndex
            let (start, end) = Self.trimmingWhitespace(bytes, from: index, to: comma)
            if start < end {  // RFC 9110 list syntax tolerates empty elements
                requested += 1
                if requested > maximumRanges { return .whole }
                guard let dash = bytes[start..<end].firstIndex(of: UInt8(ascii: "-")) else { return .whole }
                if dash == start {
                    guard let suffix = Self.number(bytes, dash + 1, end) else { return .whole }
                    if suffix != 0 && length != 0 {  // else an unsatisfiable element
                        ranges.append((length - min(suffix, length))...(length - 1))
                    }
                } else {
                    guard let first = Self.number(bytes, start, dash) else { return .whole }
                    var last = length &- 1
                    if dash + 1 < end {
                        guard let value = Self.number(bytes, dash + 1, end), value >= first else { return .whole }
                        last = value
                    }
                    if first < length { ranges.append(first...min(last, length - 1)) }  // else unsatisfiable
                }
            }
            guard comma < bytes.endIndex else { break }
            index = comma + 1
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

    /// The non-negative decimal in `bytes[start..<end]`, without sign or spaces. A number past UInt64 is
    /// UInt64.max: RFC 9110 §14.1.1 sets no bound, and such a position lies past any representation (a
    /// first position there is unsatisfiable, a last one clamped to the end, a suffix the whole body).
    private static func number(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> UInt64? {
        guard start < end else { return nil }
        var value: UInt64 = 0
        var saturated = false
        for byte in bytes[start..<end] {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            let (times, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, carry) = times.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            saturated = saturated || overflow || carry
            value = sum
        }
        return saturated ? .max : value
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }

    private static func skippingWhitespace(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> Int {
        var index = start
        while index < end, Self.isWhitespace(bytes[index]) { index += 1 }
        return index
    }

    /// `start..<end` without leading and trailing spaces and tabs (HTTP's optional whitespace).
    private static func trimmingWhitespace(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int)
        -> (Int, Int)
    {
        let first = Self.skippingWhitespace(bytes, from: start, to: end)
        var last = end
        while last > first, Self.isWhitespace(bytes[last - 1]) { last -= 1 }
        return (first, last)
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
