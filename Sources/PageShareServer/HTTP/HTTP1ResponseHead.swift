import NIOCore
import NIOHTTP1

/// Response heads as HTTP/1.1 bytes, written straight into the connection's buffer: the status line, the
/// fields as given, the blank line. Replaces NIO's response encoder and its header validator on the data
/// path. What they added is not needed here: every response this server makes with a body carries
/// `Content-Length` (no chunked framing), and every field value is made by the server from safe parts
/// (numbers, dates, hex, percent-encoded paths, fixed strings) — never a request's or an image's text.
enum HTTP1ResponseHead {
    /// Appends `head` to `buffer`.
    static func write(_ head: HTTPResponseHead, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("HTTP/1.")
        buffer.writeInteger(UInt8(ascii: head.version.minor == 0 ? "0" : "1"))
        buffer.writeInteger(UInt8(ascii: " "))
        let code = head.status.code
        buffer.writeInteger(UInt8(ascii: "0") + UInt8(code / 100 % 10))
        buffer.writeInteger(UInt8(ascii: "0") + UInt8(code / 10 % 10))
        buffer.writeInteger(UInt8(ascii: "0") + UInt8(code % 10))
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(head.status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        for (name, value) in head.headers {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }

    /// `head` as bytes in a buffer of its own.
    static func encode(_ head: HTTPResponseHead, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 256)
        Self.write(head, into: &buffer)
        return buffer
    }
}
