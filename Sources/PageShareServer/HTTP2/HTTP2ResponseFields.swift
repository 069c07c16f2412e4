import CNGHTTP2
import NIOHTTP1

/// A response head as the header list of an HTTP/2 HEADERS frame (RFC 9113 §8.3.2): `:status` first, then
/// the fields but the connection-specific ones HTTP/2 forbids (§8.2.2). The list points into the head's own
/// bytes for the one call that submits it (libnghttp2 copies what it keeps).
struct HTTP2ResponseFields {
    let head: ResponseHead

    /// Calls `body` with the header list.
    func withHeaderList<Result>(_ body: (UnsafeMutableBufferPointer<nghttp2_nv>) -> Result) -> Result {
        self.head.withFieldLines { lines in
            withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: 1 + self.head.fieldCount) { list in
                // The status code has three digits; written without a string.
                let code = self.head.status.code
                var status: (UInt8, UInt8, UInt8) = (
                    UInt8(ascii: "0") + UInt8(code / 100 % 10), UInt8(ascii: "0") + UInt8(code / 10 % 10),
                    UInt8(ascii: "0") + UInt8(code % 10)
                )
                return withUnsafeMutableBytes(of: &status) { digits in
                    Self.status.withUTF8Buffer { name in
                        list[0] = nghttp2_nv(
                            name: UnsafeMutablePointer(mutating: name.baseAddress!),
                            value: digits.baseAddress!.assumingMemoryBound(to: UInt8.self), namelen: name.count,
                            valuelen: 3, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
                    }
                    var entries = 1
                    ResponseHead.forEachField(in: lines) { name, value in
                        guard !Self.isConnectionSpecific(name) else { return }
                        let flags = Self.isSeldomRepeated(name) ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE
                        // The list was sized by the head's count of its fields: a line added around that count
                        // would be a bug here, not memory written past the list.
                        precondition(entries < list.count, "more field lines than the head counted")
                        list[entries] = nghttp2_nv(
                            name: Self.bytes(name), value: Self.bytes(value), namelen: name.count,
                            valuelen: value.count, flags: UInt8(flags.rawValue))
                        entries += 1
                    }
                    return body(UnsafeMutableBufferPointer(rebasing: list[0..<entries]))
                }
            }
        }
    }

    private static let status: StaticString = ":status"

    /// libnghttp2 takes `uint8_t *` and only reads through it.
    private static func bytes(_ memory: UnsafeRawBufferPointer) -> UnsafeMutablePointer<UInt8> {
        UnsafeMutableRawPointer(mutating: memory.baseAddress!).assumingMemoryBound(to: UInt8.self)
    }

    /// Fields whose values rarely repeat on a connection (a file's `etag`, the `content-range` of random
    /// ranges) are kept out of the HPACK dynamic table: they would only push out the ones that do repeat
    /// (content type, length, date, last-modified).
    private static func isSeldomRepeated(_ name: UnsafeRawBufferPointer) -> Bool {
        switch name.count {  // the length first: most fields are told apart without comparing a byte
        case 4: name.isEqual(to: "etag")
        case 13: name.isEqual(to: "content-range")
        default: false
        }
    }

    private static func isConnectionSpecific(_ name: UnsafeRawBufferPointer) -> Bool {
        switch name.count {  // the length first: only `connection` (HTTP/1.1's) has one of these lengths
        case 7: name.isEqual(to: "upgrade")
        case 10: name.isEqual(to: "connection") || name.isEqual(to: "keep-alive")
        case 16: name.isEqual(to: "proxy-connection")
        case 17: name.isEqual(to: "transfer-encoding")
        default: false
        }
    }
}
