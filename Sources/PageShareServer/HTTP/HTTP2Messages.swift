import NIOHPACK
import NIOHTTP1

/// Requests and responses between HTTP/2 header blocks and the HTTP/1-shaped heads the ``RequestResponder``
/// works with (RFC 9113 §8.3). `NIOHTTP2Handler` has already validated the block (pseudo-headers present,
/// first and unique; lowercase names; no connection-specific fields).
enum HTTP2Messages {
    /// The request in a HEADERS frame's block; nil when it lacks `:method` or `:path`.
    static func request(from block: HPACKHeaders) -> HTTPRequestHead? {
        var method: String?
        var path: String?
        var authority: String?
        var headers = HTTPHeaders()
        headers.reserveCapacity(block.count)
        for (name, value, _) in block {
            if name.utf8.first == UInt8(ascii: ":") {
                switch name {
                case ":method": method = value
                case ":path": path = value
                case ":authority": authority = value
                default: break  // :scheme (and :protocol) mean nothing here
                }
            } else {
                headers.add(name: name, value: value)
            }
        }
        guard let method, let path else { return nil }
        if let authority, !headers.contains(name: "host") { headers.add(name: "host", value: authority) }
        return HTTPRequestHead(
            version: .http2, method: HTTPMethod(rawValue: method), uri: path, headers: headers)
    }

    /// The header block of `head`: `:status` first, then its fields but the connection-specific ones
    /// HTTP/2 forbids (§8.2.2). Field names are written lowercase by the responder already.
    ///
    /// Fields whose values rarely repeat on a connection (a file's `etag`, the `content-range` of random
    /// ranges) are not added to the HPACK dynamic table: they would only push out the ones that do repeat
    /// (content type, length, date, last-modified), and every field's encoding searches that table.
    static func block(of head: HTTPResponseHead) -> HPACKHeaders {
        var block = HPACKHeaders()
        block.reserveCapacity(head.headers.count + 1)
        block.add(name: ":status", value: Self.statusText(head.status.code))
        for (name, value) in head.headers where !Self.isConnectionSpecific(name) {
            block.add(name: name, value: value, indexing: Self.isSeldomRepeated(name) ? .nonIndexable : .indexable)
        }
        return block
    }

    private static func isSeldomRepeated(_ name: String) -> Bool {
        name == "etag" || name == "content-range"
    }

    private static func statusText(_ code: UInt) -> String {
        switch code {
        case 200: "200"
        case 206: "206"
        case 304: "304"
        case 404: "404"
        default: String(code)
        }
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
