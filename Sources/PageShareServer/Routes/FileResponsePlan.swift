import EROFS
import NIOCore
import NIOHTTP1
import PageCache

/// The response to a GET or HEAD of a file, decided from its validators and the request's conditional and
/// Range headers before any byte is read.
struct FileResponsePlan {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders
    var body: ResponseBody
    /// For 412 and 416: the problem+json answer (its headers carry the validators and `Content-Range`).
    var problem: Problem?

    static let contentType = "application/octet-stream"

    /// A 412 or 416 with `problem` as its body and the file's headers (but the date, which every answer
    /// gets when it is sent).
    private static func refusal(_ problem: Problem, headers: HTTPHeaders) -> FileResponsePlan {
        var problem = problem
        var kept = headers
        kept.remove(name: "date")
        problem.headers = kept
        return FileResponsePlan(status: problem.responseStatus, headers: kept, body: .empty, problem: problem)
    }

    /// Plans the response for `file` (`inode` of `image`) to `request`.
    static func make(
        file: CachedFile, inode: Inode, image: Image, request: HTTPRequestHead, maximumRanges: Int,
        allocator: ByteBufferAllocator
    ) -> FileResponsePlan {
        let validators = Validators(
            entityTag: Self.entityTag(file: file, inode: inode, image: image), lastModified: inode.mtime)
        var headers = HTTPHeaders()
        headers.reserveCapacity(8)
        headers.add(name: "date", value: HTTPDate.now())
        headers.add(name: "accept-ranges", value: "bytes")
        headers.add(name: "etag", value: validators.entityTag)
        headers.add(name: "last-modified", value: HTTPDate.format(inode.mtime))
        let fields = RangeAndConditions(request.headers)
        guard !fields.rangeRepeated else {
            return Self.refusal(.badRequest("more than one Range field"), headers: headers)
        }
        let rangeHeader = fields.range
        let outcome = validators.evaluate(
            ifMatch: fields.ifMatch, ifUnmodifiedSince: fields.ifUnmodifiedSince, ifNoneMatch: fields.ifNoneMatch,
            ifModifiedSince: fields.ifModifiedSince, ifRange: fields.ifRange, hasRange: rangeHeader != nil)
        let length = file.size
        switch outcome {
        case .notModified:
            return FileResponsePlan(status: .notModified, headers: headers, body: .empty)
        case .failed:
            return Self.refusal(
                Problem("precondition-failed", .preconditionFailed, "If-Match or If-Unmodified-Since did not hold"),
                headers: headers)
        case .proceed(let honourRange):
            let ranges = ByteRangeRequest.resolve(
                honourRange ? rangeHeader : nil, length: length, maximumRanges: maximumRanges)
            switch ranges {
            case .whole:
                headers.add(name: "content-type", value: Self.contentType)
                let body: ResponseBody = length == 0 ? .empty : .range(0...(length - 1))
                return FileResponsePlan(status: .ok, headers: headers, body: body)
            case .unsatisfiable:
                headers.add(name: "content-range", value: "bytes */\(length)")
                return Self.refusal(
                    Problem(
                        "range-not-satisfiable", .rangeNotSatisfiable,
                        "no range of the Range header starts within the file's \(length) bytes"),
                    headers: headers)
            case .partial(let list) where list.count == 1:
                headers.add(name: "content-type", value: Self.contentType)
                var contentRange = ASCIIWriter(capacity: 70)
                contentRange.text("bytes ")
                contentRange.decimal(list[0].lowerBound)
                contentRange.text("-")
                contentRange.decimal(list[0].upperBound)
                contentRange.text("/")
                contentRange.decimal(length)
                headers.add(name: "content-range", value: contentRange.string)
                return FileResponsePlan(status: .partialContent, headers: headers, body: .range(list[0]))
            case .partial(let list):
                let boundary = Self.boundary()
                headers.add(name: "content-type", value: "multipart/byteranges; boundary=\(boundary)")
                let body = ResponseBody.multipart(
                    list, fileLength: length, contentType: Self.contentType, boundary: boundary, allocator: allocator)
                return FileResponsePlan(status: .partialContent, headers: headers, body: body)
            }
        }
    }

    /// A strong entity tag: the content fingerprint when the file has one, so that identical files in
    /// different images have the same tag. A privately cached file gets a tag naming its image (uuid, build
    /// time, superblock checksum) and inode; images are immutable, so the tag changes only with the image.
    static func entityTag(file: CachedFile, inode: Inode, image: Image) -> String {
        // Written into one string: this runs for every file response.
        var tag = ASCIIWriter(capacity: 112)  // a private file's tag is at most 104 bytes
        if let digest = file.contentDigest {
            tag.text("\"sha256-")
            tag.hex(digest)
        } else {
            let superBlock = image.superBlock
            tag.text("\"i-")
            tag.hex(superBlock.uuid)
            tag.text("-")
            tag.hexadecimal(UInt64(superBlock.epoch))
            tag.text("-")
            tag.hexadecimal(UInt64(superBlock.checksum))
            tag.text("-")
            tag.decimal(UInt64(inode.nid))
            tag.text("-")
            tag.decimal(inode.size)
        }
        tag.text("\"")
        return tag.string
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

/// The request fields a file response depends on, found in one pass over the headers (a lookup by name per
/// field would pass over them six times, comparing names case-insensitively each time). The first value of
/// each counts, as `HTTPHeaders.first(name:)` would give.
struct RangeAndConditions {
    var range: String?
    /// More than one Range field: the request is ambiguous (400), not "the first one wins".
    var rangeRepeated = false
    var ifMatch: String?
    var ifUnmodifiedSince: String?
    var ifNoneMatch: String?
    var ifModifiedSince: String?
    var ifRange: String?

    init(_ headers: HTTPHeaders) {
        for (name, value) in headers {
            switch name.utf8.count {
            case 5 where Self.same(name, "range"):
                self.rangeRepeated = self.range != nil
                self.range = self.range ?? value
            case 8 where Self.same(name, "if-match"): self.ifMatch = self.ifMatch ?? value
            case 8 where Self.same(name, "if-range"): self.ifRange = self.ifRange ?? value
            case 13 where Self.same(name, "if-none-match"): self.ifNoneMatch = self.ifNoneMatch ?? value
            case 17 where Self.same(name, "if-modified-since"): self.ifModifiedSince = self.ifModifiedSince ?? value
            case 19 where Self.same(name, "if-unmodified-since"):
                self.ifUnmodifiedSince = self.ifUnmodifiedSince ?? value
            default: continue
            }
        }
    }

    /// ASCII case-insensitive equality with a lowercase `field` name.
    private static func same(_ name: String, _ field: StaticString) -> Bool {
        field.withUTF8Buffer { expected in
            name.utf8.elementsEqual(expected) { byte, lower in
                (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte) == lower
            }
        }
    }
}
