import NIOCore

/// What a file response sends after its head: literal bytes (multipart boundaries and part headers) and
/// ranges of the file, in order. Built once per request; the body is then streamed segment by segment.
struct ResponseBody {
    enum Segment {
        case bytes(ByteBuffer)
        case file(offset: UInt64, count: UInt64)
    }

    var segments: SmallList<Segment>
    /// Total body bytes (the `Content-Length`).
    var length: UInt64

    /// The whole file, or one range of it.
    static func range(_ range: ClosedRange<UInt64>) -> ResponseBody {
        let count = range.upperBound - range.lowerBound + 1
        return ResponseBody(segments: [.file(offset: range.lowerBound, count: count)], length: count)
    }

    static let empty = ResponseBody(segments: [], length: 0)

    /// A `multipart/byteranges` body (RFC 9110 §14.6) for `ranges` of a `fileLength`-byte file.
    static func multipart(
        _ ranges: SmallList<ClosedRange<UInt64>>, fileLength: UInt64, contentType: String, boundary: String,
        allocator: ByteBufferAllocator
    ) -> ResponseBody {
        var segments = SmallList<Segment>()
        var length: UInt64 = 0
        for (index, range) in ranges.enumerated() {
            var header = allocator.buffer(capacity: 128)
            header.writeString(index == 0 ? "--" : "\r\n--")
            header.writeString(boundary)
            header.writeString("\r\nContent-Type: \(contentType)\r\nContent-Range: bytes ")
            header.writeString("\(range.lowerBound)-\(range.upperBound)/\(fileLength)\r\n\r\n")
            length += UInt64(header.readableBytes) + range.upperBound - range.lowerBound + 1
            segments.append(.bytes(header))
            segments.append(.file(offset: range.lowerBound, count: range.upperBound - range.lowerBound + 1))
        }
        var trailer = allocator.buffer(capacity: boundary.utf8.count + 8)
        trailer.writeString("\r\n--\(boundary)--\r\n")
        length += UInt64(trailer.readableBytes)
        segments.append(.bytes(trailer))
        return ResponseBody(segments: segments, length: length)
    }
}
