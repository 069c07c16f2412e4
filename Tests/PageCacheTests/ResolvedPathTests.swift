import EROFS
import PageCache
import Testing

/// `resolveForReading`: one lookup for what serving a path needs, the open file remembered with the path.
@Suite("Resolving paths for reading")
struct ResolvedPathTests {
    let domain = try! TrustDomain("x")

    static func read(_ file: CachedFile, count: Int) async throws -> [UInt8] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 8)
        defer { buffer.deallocate() }
        let read = try await file.read(at: 0, into: buffer)
        return Array(buffer[0..<read])
    }

    @Test("each path reads its own file, the first time and from the remembered entry after")
    func pathsKeepTheirFiles() async throws {
        let files = [("a", CacheFixtures.content("a", pages: 2)), ("b", CacheFixtures.content("b", pages: 3))]
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 1 << 20, shardCount: 1))
        try cache.attach(try CacheFixtures.image(files), id: "i", domain: self.domain, mode: .none)
        for _ in 0..<2 {
            for (name, bytes) in files {
                let resolved = try cache.resolveForReading(imageID: "i", path: "/" + name)
                let file = try #require(resolved.file, "\(name)")
                #expect(resolved.inode.size == UInt64(bytes.count))
                #expect(try await Self.read(file, count: bytes.count + 10) == bytes, "\(name)")
            }
        }
    }

    @Test("a file whose first open hashes it is not opened here; once opened, its path finds it")
    func hashedFirstOpen() async throws {
        let bytes = CacheFixtures.content("digest", pages: 2)
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 1 << 20, shardCount: 1))
        try cache.attach(try CacheFixtures.image([("f", bytes)]), id: "i", domain: self.domain, mode: .digest)
        let first = try cache.resolveForReading(imageID: "i", path: "/f")
        #expect(first.file == nil, "digest mode: the first open hashes the file, off the event loop")
        let opened = try cache.open(imageID: "i", inode: first.inode)
        let again = try #require(try cache.resolveForReading(imageID: "i", path: "/f").file)
        #expect(try await Self.read(again, count: bytes.count) == bytes)
        #expect(again.contentDigest == opened.contentDigest && again.contentDigest != nil)
        let third = try #require(try cache.resolveForReading(imageID: "i", path: "/f").file, "from the entry")
        #expect(third.contentDigest == opened.contentDigest)
        #expect(throws: PageCacheError.self) { try cache.resolveForReading(imageID: "other", path: "/f") }
    }

    @Test("a connection's image lookup is never stale: detach, re-attach, visibility, a changed image, NFC and NFD ids")
    func rememberedLookups() async throws {
        let first = CacheFixtures.content("first", pages: 1)
        let second = CacheFixtures.content("second", pages: 1)
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 1 << 20, shardCount: 1))
        let nfc = "caf\u{E9}"
        let nfd = "cafe\u{301}"
        try cache.attach(try CacheFixtures.image([("f", first)]), id: nfc, domain: self.domain, mode: .none)
        var lookup = ImageLookup()
        func resolve(_ id: String, visible: Bool = true) async throws -> [UInt8] {
            let resolved = try cache.resolveForReading(
                imageID: id, path: "/f", visible: { _ in visible }, lookup: &lookup)
            return try await Self.read(try #require(resolved.file), count: 8192)
        }
        #expect(try await resolve(nfc) == first)
        #expect(try await resolve(nfc) == first, "from the lookup")
        await #expect(throws: PageCacheError.self, "the NFD spelling is another id") { try await resolve(nfd) }
        await #expect(throws: PageCacheError.self, "visibility is checked every time") {
            try await resolve(nfc, visible: false)
        }
        #expect(try await resolve(nfc) == first)

        try cache.detach(id: nfc)
        await #expect(throws: PageCacheError.self, "a detached image is not served from the lookup") {
            try await resolve(nfc)
        }
        try cache.attach(try CacheFixtures.image([("f", second)]), id: nfc, domain: self.domain, mode: .none)
        #expect(try await resolve(nfc) == second, "the image attached again under the id, not the one remembered")

        #expect(try await resolve(nfc) == second)
        #expect(cache.markChanged(id: nfc, reason: "test"))
        await #expect(throws: PageCacheError.self, "a changed image fails its reads from the lookup too") {
            try await resolve(nfc)
        }
    }
}
