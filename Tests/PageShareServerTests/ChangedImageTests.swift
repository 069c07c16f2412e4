import EROFS
import EROFSTestSupport
import Foundation
import Glibc
import PageCache
import Testing

@testable import PageShareServer

/// An image file written to under the daemon is never served as a mix of old and new bytes: the image
/// goes to `changed`, its pages are dropped and its reads answer 503 until it is attached again. A file
/// renamed or deleted while attached keeps serving the bytes it was attached with, and says so.
@Suite("Image files that change on disk", .serialized)
struct ChangedImageTests {
    static let first = TestTree.pattern(3 * 4096 + 100, seed: 1)
    /// ``first`` with its first block replaced, as the overwrite leaves it.
    static let second = TestTree.pattern(4096, seed: 2) + first[4096...]

    /// An image holding `a` (``first``: whole blocks of its own, then an inline tail) and `b`.
    static func makeImage() throws -> TestImage {
        try TestImage(options: []) { root in
            try TestTree.write(root + "/a", Self.first)
            try TestTree.write(root + "/b", TestTree.pattern(20_000, seed: 3))
        }
    }

    /// Overwrites, in place, the stored first block of `a` (the image keeps its size).
    static func overwriteInPlace(_ path: String) throws {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let offset = try #require(
            stride(from: 4096, to: bytes.count - 4096, by: 4096).first {
                bytes[$0..<$0 + 4096].elementsEqual(Self.first[0..<4096])
            })
        let descriptor = open(path, O_WRONLY)
        defer { close(descriptor) }
        let written = Self.second.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, 4096, off_t(offset)) }
        try #require(written == 4096)
    }

    /// Image `img`'s status field `key` once `done` holds for it (polled for up to 2 s), or the last value.
    static func awaitStatus(
        _ server: ServerFixture, _ key: String, until done: (String) -> Bool
    ) async throws -> String {
        var value = ""
        for _ in 0..<100 {
            let response = try await server.get("/v1/admin/images/img")
            let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
            value = object?[key] as? String ?? ""
            if done(value) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        return value
    }

    @Test("the cache refuses reads and fills of an image whose file was written to, without inotify")
    func cacheChecksBeforeFills() async throws {
        let image = try Self.makeImage()
        defer { image.remove() }
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 16 << 20, readaheadPages: 0))
        try cache.attach(try image.open(), id: "img", domain: try TrustDomain("d"), mode: .none)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { buffer.deallocate() }
        #expect(try await cache.read(imageID: "img", path: "a", at: 0, into: buffer) == 4096)
        #expect(cache.residentBytes > 0)
        try Self.overwriteInPlace(image.path)
        // The next fill sees the change before reading, marks the image and drops its pages.
        await #expect(throws: PageCacheError(.imageChanged, "")) {
            try await cache.read(imageID: "img", path: "a", at: 8192, into: buffer)
        }
        #expect(cache.residentBytes == 0)
        // A page that was cached is not served either: every read of the image fails now.
        await #expect(throws: PageCacheError(.imageChanged, "")) {
            try await cache.read(imageID: "img", path: "a", at: 0, into: buffer)
        }
        #expect(cache.registry.attachment(id: "img")?.changeReason?.contains("changed on disk") == true)
        try cache.detach(id: "img")
        try cache.attach(try image.open(), id: "img", domain: try TrustDomain("d"), mode: .none)
        #expect(try await cache.read(imageID: "img", path: "a", at: 0, into: buffer) == 4096)
        #expect(Array(buffer) == Array(Self.second[0..<4096]))
        #expect(Array(buffer) != Array(Self.first[0..<4096]))
    }

    @Test("through the daemon: changed within a second, 503 image-changed, then the new bytes after re-attaching")
    func daemonNoticesWrites() async throws {
        let image = try Self.makeImage()
        defer { image.remove() }
        let server = try await ServerFixture.start([])
        let attach = #"{"id":"img","path":"\#(image.path)","fingerprint":"none"}"#
        #expect(try await server.send("POST", "/v1/admin/images", json: attach).status == 201)
        let before = try await server.get("/v1/images/img/files/a")
        #expect(before.status == 200 && before.body == Self.first)
        try Self.overwriteInPlace(image.path)
        let state = try await Self.awaitStatus(server, "state") { $0 == "changed" }
        #expect(state == "changed", "inotify's modify event marks the image")
        for path in ["a", "b"] {
            let after = try await server.get("/v1/images/img/files/\(path)", over: .http2)
            #expect(after.status == 503 && after.problemType == "urn:pageshare:problem:image-changed")
        }
        #expect(try await server.send("DELETE", "/v1/admin/images/img").status == 204)
        #expect(try await server.send("POST", "/v1/admin/images", json: attach).status == 201)
        let again = try await server.get("/v1/images/img/files/a")
        #expect(again.status == 200 && again.body == Self.second)
        await server.stop()
    }

    @Test("a renamed or deleted image file keeps serving what was attached, and the status says so")
    func renamedAndDeletedFilesAreReported() async throws {
        let image = try Self.makeImage()
        defer { image.remove() }
        let server = try await ServerFixture.start([])
        let attach = #"{"id":"img","path":"\#(image.path)","fingerprint":"none"}"#
        #expect(try await server.send("POST", "/v1/admin/images", json: attach).status == 201)
        let moved = image.path + ".moved"
        #expect(rename(image.path, moved) == 0)
        let renamed = try await Self.awaitStatus(server, "reason") { $0.contains("replaced or renamed") }
        #expect(renamed.contains("replaced or renamed"), "\(renamed)")
        #expect(try await Self.awaitStatus(server, "state") { _ in true } == "ready")
        #expect(try await server.get("/v1/images/img/files/a").body == Self.first)
        #expect(unlink(moved) == 0)
        let deleted = try await Self.awaitStatus(server, "reason") { $0.contains("deleted") }
        #expect(deleted.contains("deleted on disk"), "\(deleted)")
        let served = try await server.get("/v1/images/img/files/b")
        #expect(served.status == 200 && served.body == TestTree.pattern(20_000, seed: 3))
        await server.stop()
    }

    @Test("a truncated image is refused at attach, naming what the superblock counts")
    func truncatedImageIsRefused() throws {
        let image = try Self.makeImage()
        defer { image.remove() }
        #expect(truncate(image.path, off_t(try image.bytes().count - 4096)) == 0)
        #expect {
            try Image(path: image.path)
        } throws: { error in
            "\(error)".contains("image is truncated") && "\(error)".contains(image.path)
        }
    }
}
