import CNGHTTP2
import NIOHTTP1

/// A response head as the header list of an HTTP/2 HEADERS frame (RFC 9113 §8.3.2): `:status` first, then
/// the fields but the connection-specific ones HTTP/2 forbids (§8.2.2). Field names are lowercase already
/// (the responder writes them so). Built in stack memory for the one call that submits it (libnghttp2
/// copies what it keeps).
struct HTTP2ResponseFields {
    let head: HTTPResponseHead

    /// Calls `body` with the header list.
    func withHeaderList<Result>(_ body: (UnsafeMutableBufferPointer<nghttp2_nv>) -> Result) -> Result {
        var bytes = 3
        var count = 1
        for (name, value) in self.head.headers where !Self.isConnectionSpecific(name) {
            bytes += name.utf8.count + value.utf8.count
            count += 1
        }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: bytes) { storage in
            withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: count) { list in
                var used = 0
                /// Copies `text` into the storage; returns where it starts.
                func copy(_ text: String) -> UnsafeMutablePointer<UInt8> {
                    let start = storage.baseAddress! + used
                    for byte in text.utf8 {
                        storage[used] = byte
                        used += 1
                    }
                    return start
                }
                // The status code has three digits; written without a string.
                let code = self.head.status.code
                let status = storage.baseAddress! + used
                for digit in [code / 100 % 10, code / 10 % 10, code % 10] {
                    storage[used] = UInt8(ascii: "0") + UInt8(digit)
                    used += 1
                }
                Self.status.withUTF8Buffer { name in
                    list[0] = nghttp2_nv(
                        name: UnsafeMutablePointer(mutating: name.baseAddress!), value: status, namelen: name.count,
                        valuelen: 3, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
                }
                var entries = 1
                for (name, value) in self.head.headers where !Self.isConnectionSpecific(name) {
                    let flags = Self.isSeldomRepeated(name) ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE
                    list[entries] = nghttp2_nv(
                        name: copy(name), value: copy(value), namelen: name.utf8.count, valuelen: value.utf8.count,
                        flags: UInt8(flags.rawValue))
                    entries += 1
                }
                return body(UnsafeMutableBufferPointer(rebasing: list[0..<entries]))
            }
        }
    }

    private static let status: StaticString = ":status"

    /// Fields whose values rarely repeat on a connection (a file's `etag`, the `content-range` of random
    /// ranges) are kept out of the HPACK dynamic table: they would only push out the ones that do repeat
    /// (content type, length, date, last-modified).
    private static func isSeldomRepeated(_ name: String) -> Bool {
        name == "etag" || name == "content-range"
    }

    private static func isConnectionSpecific(_ name: String) -> Bool {
        switch name.utf8.count {  // the length first: no field the responder sends has one of these lengths
        case 7: name == "upgrade"
        case 10: name == "connection" || name == "keep-alive"
        case 16: name == "proxy-connection"
        case 17: name == "transfer-encoding"
        default: false
        }
    }
}
