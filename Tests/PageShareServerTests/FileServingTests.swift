import EROFS
import EROFSTestSupport
import Foundation
import PageCache
import Synchronization
import Testing

@testable import PageShareServer

/// Whole files and ranges over every transport, compared with the bytes written into the image (and, as
/// root, with the kernel's mount of the same image).
@Suite("Serving files", .serialized)
struct FileServingTests {
    static func makeImage(_ options: [String]) throws -> TestImage {
        try TestImage(options: options) { try ServedTree.write(at: $0) }
    }

    @Test(
        "every file whole, over HTTP/1.1, h2c and the unix socket, plain and lz4hc images",
        arguments: [[], ["-zlz4hc"]])
    func wholeFiles(options: [String]) async throws {
        let image = try Self.makeImage(options)
        defer { image.remove() }
        let server = try await ServerFixture.start([("img", try image.open(), "default", .digest)])
        for transport in ServerFixture.Transport.allCases {
            for path in ServedTree.files.map(\.0) + ["link-to-big", "dir/up-link"] {
                let expected = ServedTree.content(path)!
                let response = try await server.get("/v1/images/img/files/" + ServedTree.encode(path), over: transport)
                #expect(response.status == 200, "\(transport) \(path): \(response.bodyText)")
                let same = response.body == expected
                #expect(same, "\(transport) \(path): \(response.body.count) bytes, not \(expected.count)")
                #expect(response.header("content-length") == String(expected.count))
                #expect(response.header("accept-ranges") == "bytes")
            }
        }
        let h2 = try await server.get("/v1/images/img/files/one", over: .http2)
        #expect(h2.httpVersion == "2")
        await server.stop()
    }

    @Test("random single ranges, suffix and open-ended ranges equal the file's bytes")
    func randomRanges() async throws {
        let image = try Self.makeImage(["-zlz4hc"])
        defer { image.remove() }
        let server = try await ServerFixture.start([("img", try image.open(), "default", .xattr)])
        var generator = SystemRandomNumberGenerator()
        let big = ServedTree.content("big.bin")!
        for round in 0..<40 {
            let transport: ServerFixture.Transport = round % 2 == 0 ? .http1 : .http2
            let start = Int.random(in: 0..<big.count, using: &generator)
            let end = min(big.count - 1, start + Int.random(in: 0..<300_000, using: &generator))
            let response = try await server.get(
                "/v1/images/img/files/big.bin", over: transport, headers: ["Range": "bytes=\(start)-\(end)"])
            #expect(response.status == 206)
            #expect(response.header("content-range") == "bytes \(start)-\(end)/\(big.count)")
            #expect(response.body == Array(big[start...end]), "\(transport) bytes=\(start)-\(end)")
        }
        let suffix = try await server.get("/v1/images/img/files/big.bin", headers: ["Range": "bytes=-1000"])
        #expect(suffix.status == 206 && suffix.body == Array(big.suffix(1000)))
        #expect(suffix.header("content-range") == "bytes \(big.count - 1000)-\(big.count - 1)/\(big.count)")
        let open = try await server.get(
            "/v1/images/img/files/big.bin", over: .http2, headers: ["Range": "bytes=2499000-"])
        #expect(open.status == 206 && open.body == Array(big[2_499_000...]))
        let past = try await server.get("/v1/images/img/files/page", headers: ["Range": "bytes=4000-99999"])
        #expect(past.status == 206 && past.body == Array(ServedTree.content("page")![4000...]))
        let longSuffix = try await server.get("/v1/images/img/files/one", headers: ["Range": "bytes=-50"])
        #expect(longSuffix.status == 206 && longSuffix.body == [0x41])
        await server.stop()
    }

    @Test("several ranges give multipart/byteranges whose parts carry the right bytes")
    func multipartRanges() async throws {
        let image = try Self.makeImage([])
        defer { image.remove() }
        let server = try await ServerFixture.start([("img", try image.open(), "default", .none)])
        let medium = ServedTree.content("dir/nested/medium.bin")!
        let ranges = [(0, 99), (4096, 8191), (299_000, 299_999)]
        for transport in [ServerFixture.Transport.http1, .http2] {
            let response = try await server.get(
                "/v1/images/img/files/dir/nested/medium.bin", over: transport,
                headers: ["Range": "bytes=" + ranges.map { "\($0.0)-\($0.1)" }.joined(separator: ", ")])
            #expect(response.status == 206)
            let contentType = try #require(response.header("content-type"))
            #expect(contentType.hasPrefix("multipart/byteranges; boundary="))
            let boundary = String(contentType.dropFirst("multipart/byteranges; boundary=".count))
            let parts = try MultipartBody.parse(response.body, boundary: boundary)
            #expect(parts.count == ranges.count)
            for (part, range) in zip(parts, ranges) {
                #expect(part.headers["content-range"] == "bytes \(range.0)-\(range.1)/\(medium.count)")
                #expect(part.headers["content-type"] == "application/octet-stream")
                #expect(part.body == Array(medium[range.0...range.1]))
            }
            #expect(response.header("content-length") == String(response.body.count))
        }
        await server.stop()
    }

    @Test(
        "the kernel's mount of the image and the server agree on every file (needs root and mount)",
        .enabled(if: KernelMount.isAvailable, "needs root and mount -t erofs"))
    func kernelOracle() async throws {
        let image = try Self.makeImage(["-zlz4"])
        defer { image.remove() }
        let server = try await ServerFixture.start([("img", try image.open(), "default", .digest)])
        let kernel = try KernelMount.withMount(image.path) { mount in
            try ServedTree.files.map { path, _ in Array(try Data(contentsOf: URL(fileURLWithPath: mount + "/" + path)))
            }
        }
        for ((path, _), kernelBytes) in zip(ServedTree.files, kernel) {
            let served = try await server.get("/v1/images/img/files/" + ServedTree.encode(path), over: .http2)
            let same = served.body == kernelBytes
            #expect(same, "\(path)")
        }
        await server.stop()
    }

    @Test("a privately cached file's ETag names its image build (uuid, time, checksum) and inode, over both protocols")
    func privateEntityTag() async throws {
        let built = try Self.makeImage([])
        defer { built.remove() }
        let image = try built.open()
        let server = try await ServerFixture.start([("p", image, "tenant", .none)])
        let superBlock = image.superBlock
        let inode = try image.resolve("/big.bin")
        let uuid = superBlock.uuid.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        let expected =
            "\"i-\(uuid)-\(String(superBlock.epoch, radix: 16))-\(String(superBlock.checksum, radix: 16))-\(inode.nid)-"
            + "\(inode.size)\""
        for transport in [ServerFixture.Transport.http1, .http2] {
            let response = try await server.get("/v1/images/p/files/big.bin", over: transport)
            #expect(response.status == 200 && response.header("etag") == expected, "\(transport)")
        }
    }

    @Test("identical files in two images of a domain share one ETag and are cached once")
    func sharedContent() async throws {
        let first = try Self.makeImage([])
        let second = try TestImage(options: ["-zlz4hc"]) { root in
            try TestTree.write(root + "/copy/big.bin", ServedTree.content("big.bin")!, makingParent: true)
        }
        defer {
            first.remove()
            second.remove()
        }
        let server = try await ServerFixture.start([
            ("a", try first.open(), "tenant", .digest), ("b", try second.open(), "tenant", .digest),
            ("c", try second.open(), "other", .digest),
        ])
        let a = try await server.get("/v1/images/a/files/big.bin")
        let b = try await server.get("/v1/images/b/files/copy/big.bin", over: .http2)
        #expect(a.body == b.body && a.body == ServedTree.content("big.bin")!)
        #expect(a.header("etag") != nil && a.header("etag") == b.header("etag"))
        let statistics = server.cache.statistics(for: try TrustDomain("tenant"))
        let pages = (2_500_000 + 4095) / 4096
        #expect(statistics.residentBytes == pages * 4096, "the shared file is resident once")
        #expect(statistics.savedBytes == pages * 4096)
        _ = try await server.get("/v1/images/c/files/copy/big.bin")
        #expect(server.cache.statistics(for: try TrustDomain("other")).savedBytes == 0, "no sharing across domains")
        await server.stop()
    }

    /// With 16 KiB pages resident pages go to the wire as views of the cache's memory. In a cache far smaller
    /// than the files being read at once, every page is evicted and refilled over and over while earlier
    /// views of it may still be queued in NIO: the bytes served must still be the file's.
    @Test("lent pages are not reused while NIO holds them: concurrent reads through a tiny cache")
    func lentPagesUnderEviction() async throws {
        let image = try Self.makeImage([])
        defer { image.remove() }
        let server = try await ServerFixture.start(
            [("img", try image.open(), "default", .none)], budgetBytes: 64 * 16384, pageSize: 16384)
        #expect(PageWrites(pageSize: 16384) == .lend)
        let big = ServedTree.content("big.bin")!
        let medium = ServedTree.content("dir/nested/medium.bin")!
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<8 {
                group.addTask {
                    let transport: ServerFixture.Transport = client % 2 == 0 ? .http1 : .http2
                    for round in 0..<5 {
                        if (client + round) % 3 == 0 {
                            let response = try await server.get("/v1/images/img/files/dir/nested/medium.bin")
                            #expect(response.body == medium, "client \(client) round \(round)")
                        } else {
                            let response = try await server.get("/v1/images/img/files/big.bin", over: transport)
                            #expect(response.body == big, "client \(client) round \(round) \(transport)")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let statistics = server.cache.statistics(for: try TrustDomain("default"))
        #expect(statistics.evictions > 500 && statistics.hits > 500, "\(statistics)")
        await server.stop()
    }

    @Test("a broken image region fails that range only; the rest of the image and the daemon carry on")
    func brokenRegion() async throws {
        let image = try TestImage(options: []) { root in
            try ServedTree.write(at: root)
            try TestTree.write(root + "/a-first.bin", TestTree.pattern(50_000, seed: 9))
        }
        defer { image.remove() }
        let copy = image.directory.path + "/broken.img"
        _ = try run("/bin/cp", [image.path, copy])
        // Where the uncompressed files' bytes sit in the image: big.bin, and files stored before it.
        let imageBytes = try image.bytes()
        let big = ServedTree.content("big.bin")!
        let bigStart = try #require(MultipartBody.offset(of: Array(big.prefix(4096)), in: imageBytes))
        let late = TestTree.pattern(50_000, seed: 9)
        let candidates = ["page-minus-one", "page", "page-plus-one", "dir/nested/medium.bin", "a-first.bin"]
        let content = { (path: String) in path == "a-first.bin" ? late : ServedTree.content(path)! }
        let before = candidates.filter { path in
            let bytes = content(path)
            return MultipartBody.offset(of: Array(bytes.prefix(4095)), in: imageBytes).map { $0 < bigStart } ?? false
        }
        try #require(!before.isEmpty, "some file's data precedes big.bin's")
        // A device that fails, after attach, every read past 1 MB into big.bin's data (a bad disk region: the
        // file is not changed, so the image stays attached; a file cut short on disk is an image change,
        // see ChangedImageTests).
        let source = BrokenTailSource(try FileImageSource(path: copy))
        let opened = try Image(source: source)
        let server = try await ServerFixture.start([("img", opened, "default", .none)])
        source.failPast.store(UInt64(bigStart + 1_000_000), ordering: .relaxed)
        let head = try await server.get("/v1/images/img/files/big.bin", headers: ["Range": "bytes=0-4095"])
        #expect(head.status == 206 && head.body == Array(big[0...4095]))
        let tail = try await server.get("/v1/images/img/files/big.bin", headers: ["Range": "bytes=-4096"])
        #expect(tail.status == 500)
        #expect(tail.problemType == "urn:pageshare:problem:image-read-error")
        let whole = try await server.get("/v1/images/img/files/big.bin", over: .http2)
        #expect(whole.curlExit != 0 || whole.status == 500, "a body that cannot be read is cut short, never padded")
        let prefixMatches = whole.body.count < big.count && Array(big.prefix(whole.body.count)) == whole.body
        #expect(prefixMatches)
        let errors = MetricsEndpointTests.value(
            try await server.get("/metrics").bodyText, "pageshare_image_read_errors_total")
        #expect((errors ?? 0) >= 2, "each failed fill is counted")
        for path in before {
            let other = try await server.get("/v1/images/img/files/" + ServedTree.encode(path))
            let same = other.body == content(path)
            #expect(other.status == 200 && same, "\(path)")
        }
        await server.stop()
    }
}

/// An image file whose reads past `failPast` fail, as a bad region of a disk's would.
final class BrokenTailSource: ImageSource {
    let file: FileImageSource
    let failPast = Atomic<UInt64>(.max)
    init(_ file: FileImageSource) { self.file = file }
    var size: UInt64 { self.file.size }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        guard offset + UInt64(buffer.count) <= self.failPast.load(ordering: .relaxed) else {
            throw EROFSError(.ioFailure, "read at \(offset): input/output error (injected)", byteOffset: offset)
        }
        try self.file.read(into: buffer, at: offset)
    }
}

/// A minimal `multipart/byteranges` parser for the tests (RFC 9110 §14.6, RFC 2046 §5.1).
enum MultipartBody {
    struct Part {
        var headers: [String: String]
        var body: [UInt8]
    }

    struct Malformed: Error {}

    static func parse(_ body: [UInt8], boundary: String) throws -> [Part] {
        let delimiter = Array("--\(boundary)".utf8)
        var parts: [Part] = []
        var index = try Self.find(delimiter, in: body, from: 0) + delimiter.count
        while true {
            if body[index..<index + 2].elementsEqual("--".utf8) { return parts }
            guard body[index..<index + 2].elementsEqual("\r\n".utf8) else { throw Malformed() }
            let headerEnd = try Self.find(Array("\r\n\r\n".utf8), in: body, from: index)
            var headers: [String: String] = [:]
            for line in String(decoding: body[(index + 2)..<headerEnd], as: UTF8.self).components(separatedBy: "\r\n") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                    in: .whitespaces)
            }
            let next = try Self.find(Array("\r\n--\(boundary)".utf8), in: body, from: headerEnd + 4)
            parts.append(Part(headers: headers, body: Array(body[(headerEnd + 4)..<next])))
            index = next + 2 + delimiter.count
        }
    }

    /// Where `needle` first occurs in `haystack`.
    static func offset(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        try? Self.find(needle, in: haystack, from: 0)
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) throws -> Int {
        var index = start
        while index + needle.count <= haystack.count {
            if haystack[index..<index + needle.count].elementsEqual(needle) { return index }
            index += 1
        }
        throw Malformed()
    }
}
