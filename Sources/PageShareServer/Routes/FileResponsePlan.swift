import EROFS
import NIOCore
import NIOHTTP1
import PageCache

/// The response to a GET or HEAD of a file, decided from its validators and the request's conditional and
/// Range headers before any byte is read.
struct FileResponsePlan {
    /// The status and the file's fields (validators, type, range); the responder adds the date, the length
    /// and the connection's fields when it sends it.
    var head: ResponseHead
    var body: ResponseBody
    /// For 400, 412 and 416: the problem+json answer, sent with the head's fields (validators and
    /// `Content-Range`).
    var problem: Problem?

    static let contentType = "application/octet-stream"

    /// Room for the longest head this plan and the responder write (each field's line at its most, as
    /// ``ResponseHead/add(_:maximumBytes:_:)`` reserves it): the head's buffer is then allocated once.
    /// accept-ranges 22, etag 112, last-modified 46, content-type 40, content-range 85, date 37,
    /// content-length 38, connection 19.
    static let headCapacity = 400

    var status: HTTPResponseStatus { self.head.status }

    /// A refusal with `problem` as its body and the file's fields.
    private static func refusal(_ problem: Problem, head: ResponseHead) -> FileResponsePlan {
        var head = head
        head.status = problem.responseStatus
        return FileResponsePlan(head: head, body: .empty, problem: problem)
    }

    /// Plans the response for `file` (`inode` of the image stamped `stamp`) to `request`.
    static func make(
        file: CachedFile, inode: Inode, stamp: ImageStamp, request: borrowing Request, maximumRanges: Int,
        allocator: ByteBufferAllocator
    ) -> FileResponsePlan {
        var head = ResponseHead(status: .ok, allocator: allocator, capacity: Self.headCapacity)
        head.add("accept-ranges", "bytes")
        head.add("etag", maximumBytes: Self.entityTagLength) {
            Self.writeEntityTag(file: file, inode: inode, stamp: stamp, into: &$0)
        }
        head.add("last-modified", maximumBytes: HTTPDate.length) { $0.date(inode.mtime) }
        // Borrowed, and read field by field: a copy of the request would retain each of its strings.
        guard request.fields.rangeCount <= 1 else {
            return Self.refusal(.badRequest("more than one Range field"), head: head)
        }
        var outcome = PreconditionOutcome.proceed(honourRange: true)
        if request.fields.hasConditions {
            let validators = Validators(
                entityTag: Self.entityTag(file: file, inode: inode, stamp: stamp), lastModified: inode.mtime)
            outcome = validators.evaluate(
                ifMatch: request.fields.ifMatch, ifUnmodifiedSince: request.fields.ifUnmodifiedSince,
                ifNoneMatch: request.fields.ifNoneMatch, ifModifiedSince: request.fields.ifModifiedSince,
                ifRange: request.fields.ifRange, hasRange: request.fields.range != nil)
        }
        let length = file.size
        switch outcome {
        case .notModified:
            head.status = .notModified
            return FileResponsePlan(head: head, body: .empty)
        case .failed:
            return Self.refusal(
                Problem("precondition-failed", .preconditionFailed, "If-Match or If-Unmodified-Since did not hold"),
                head: head)
        case .proceed(let honourRange):
            let ranges = ByteRangeRequest.resolve(
                honourRange ? request.fields.range : nil, length: length, maximumRanges: maximumRanges)
            switch ranges {
            case .whole:
                head.add("content-type", Self.contentType)
                let body: ResponseBody = length == 0 ? .empty : .range(0...(length - 1))
                return FileResponsePlan(head: head, body: body)
            case .unsatisfiable:
                head.add("content-range", maximumBytes: 28) { value in
                    value.text("bytes */")
                    value.decimal(length)
                }
                return Self.refusal(
                    Problem(
                        "range-not-satisfiable", .rangeNotSatisfiable,
                        "no range of the Range header starts within the file's \(length) bytes"),
                    head: head)
            case .partial(let list) where list.count == 1:
                head.status = .partialContent
                head.add("content-type", Self.contentType)
                head.add("content-range", maximumBytes: 68) { value in
                    value.text("bytes ")
                    value.decimal(list[0].lowerBound)
                    value.text("-")
                    value.decimal(list[0].upperBound)
                    value.text("/")
                    value.decimal(length)
                }
                return FileResponsePlan(head: head, body: .range(list[0]))
            case .partial(let list):
                head.status = .partialContent
                let boundary = Self.boundary()
                head.add("content-type", "multipart/byteranges; boundary=\(boundary)")
                let body = ResponseBody.multipart(
                    list, fileLength: length, contentType: Self.contentType, boundary: boundary, allocator: allocator)
                return FileResponsePlan(head: head, body: body)
            }
        }
    }

    /// A strong entity tag: the content fingerprint when the file has one, so that identical files in
    /// different images have the same tag. A privately cached file gets a tag naming its image (its stamp:
    /// uuid, build time, superblock checksum) and inode; images are immutable, so the tag changes only with
    /// the image.
    static func entityTag(file: CachedFile, inode: Inode, stamp: ImageStamp) -> String {
        String(unsafeUninitializedCapacity: Self.entityTagLength) { memory in
            var tag = FieldValueWriter(UnsafeMutableRawBufferPointer(memory))
            Self.writeEntityTag(file: file, inode: inode, stamp: stamp, into: &tag)
            return tag.count
        }
    }

    /// The longest entity tag: a private file's, `"i-` + 32 + `-` + 16 + `-` + 8 + `-` + 20 + `-` + 20 + `"`.
    static let entityTagLength = 104

    /// Writes the entity tag (``entityTag(file:inode:stamp:)``), quotes included.
    static func writeEntityTag(file: CachedFile, inode: Inode, stamp: ImageStamp, into tag: inout FieldValueWriter) {
        if let digest = file.contentDigest {
            tag.text("\"sha256-")
            tag.hex(digest)
        } else {
            tag.text("\"i-")
            stamp.withUUIDBytes { tag.hex($0) }
            tag.text("-")
            tag.hexadecimal(stamp.epoch)
            tag.text("-")
            tag.hexadecimal(UInt64(stamp.checksum))
            tag.text("-")
            tag.decimal(UInt64(inode.nid))
            tag.text("-")
            tag.decimal(inode.size)
        }
        tag.text("\"")
    }

    /// A random 128-bit multipart boundary: file bytes would have to contain it by chance to confuse a
    /// parser (RFC 2046 asks that it not occur in the parts).
    private static func boundary() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        return "pageshare-" + String(high, radix: 16) + String(low, radix: 16)
    }
}
