import CNGHTTP2
import NIOCore
import NIOHTTP1
import Testing

@testable import PageShareServer

/// Response heads as bytes: the HTTP/1.1 head completed in place, the HTTP/2 header list pointing into it.
@Suite("Response heads")
struct ResponseHeadTests {
    static func sample(_ status: HTTPResponseStatus = .partialContent) -> ResponseHead {
        var head = ResponseHead(status: status, allocator: ByteBufferAllocator())
        head.add("accept-ranges", "bytes")
        head.add("content-length", decimal: 4096)
        head.add("content-range", maximumBytes: 27) { value in
            value.text("bytes ")
            value.decimal(0)
            value.text("-")
            value.decimal(UInt64.max)
        }
        head.add(name: "allow", value: "GET, HEAD")
        return head
    }

    @Test("HTTP/1.1 bytes: the status line written before the fields, the blank line after")
    func http1() {
        let bytes = Self.sample().http1Bytes(minorVersion: 1, closing: false)
        #expect(
            String(buffer: bytes)
                == "HTTP/1.1 206 Partial Content\r\naccept-ranges: bytes\r\ncontent-length: 4096\r\n"
                + "content-range: bytes 0-18446744073709551615\r\nallow: GET, HEAD\r\n\r\n")
        let old = ResponseHead(status: .ok, allocator: ByteBufferAllocator()).http1Bytes(
            minorVersion: 0, closing: false)
        #expect(String(buffer: old) == "HTTP/1.0 200 OK\r\n\r\n")
    }

    @Test("closing adds connection: close once; a head that has a connection field keeps its own")
    func closing() {
        let closed = String(buffer: Self.sample(.notFound).http1Bytes(minorVersion: 1, closing: true))
        #expect(closed.hasPrefix("HTTP/1.1 404 Not Found\r\n") && closed.hasSuffix("connection: close\r\n\r\n"))
        var own = ResponseHead(status: .ok, allocator: ByteBufferAllocator())
        own.add("connection", "close")
        #expect(own.hasConnectionField)
        let text = String(buffer: own.http1Bytes(minorVersion: 1, closing: true))
        #expect(text == "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")
    }

    @Test("a reason phrase too long for the room is left out, the status code kept")
    func longReason() {
        let head = ResponseHead(
            status: .custom(code: 299, reasonPhrase: String(repeating: "r", count: 80)),
            allocator: ByteBufferAllocator())
        #expect(String(buffer: head.http1Bytes(minorVersion: 1, closing: false)) == "HTTP/1.1 299 \r\n\r\n")
    }

    @Test("fields read back in order; HTTP/2's list has :status first and no connection-specific field")
    func http2() {
        var head = Self.sample()
        head.add("connection", "close")
        #expect(head.fields.map(\.name) == ["accept-ranges", "content-length", "content-range", "allow", "connection"])
        #expect(head.fields[2].value == "bytes 0-18446744073709551615")
        let list = HTTP2ResponseFields(head: head).withHeaderList { list in
            list.map { field in
                (
                    String(decoding: UnsafeBufferPointer(start: field.name, count: field.namelen), as: UTF8.self),
                    String(decoding: UnsafeBufferPointer(start: field.value, count: field.valuelen), as: UTF8.self),
                    field.flags
                )
            }
        }
        #expect(list.map(\.0) == [":status", "accept-ranges", "content-length", "content-range", "allow"])
        #expect(list[0].1 == "206" && list[2].1 == "4096")
        #expect(list[3].2 == UInt8(NGHTTP2_NV_FLAG_NO_INDEX.rawValue), "content-range stays out of the HPACK table")
    }

    @Test("HTTP dates written as field values are the formatted ones")
    func dates() {
        for seconds: Int64 in [0, 784_111_777, -1, 253_402_300_799, 1_800_000_000] {
            var head = ResponseHead(status: .ok, allocator: ByteBufferAllocator())
            head.add("date", maximumBytes: HTTPDate.length) { $0.date(seconds) }
            #expect(head.fields[0].value == HTTPDate.format(seconds))
        }
        #expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
    }
}
