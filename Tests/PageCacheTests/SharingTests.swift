import EROFS
import EROFSTestSupport
import PageCache
import Testing

@Suite("Sharing within a domain, isolation across domains")
struct SharingTests {
    let files = (1...5).map { ("f\($0)", CacheFixtures.content("f\($0)")) }
    let pageSize = 4096

    /// A shares f1–f5, B shares f1–f4 and has g, C shares f1 and has h.
    func makeImages() throws -> [(String, Image, [(String, [UInt8])])] {
        let a = self.files
        let b = Array(self.files.prefix(4)) + [("g", CacheFixtures.content("g"))]
        let c = [self.files[0], ("h", CacheFixtures.content("h", pages: 1))]
        return try [("a", a), ("b", b), ("c", c)].map { ($0.0, try CacheFixtures.image($0.1), $0.1) }
    }

    @Test func sharedFilesAreResidentOnce() async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 64 << 20))
        let domain = try TrustDomain("tenant-x")
        let images = try self.makeImages()
        for (id, image, _) in images { try cache.attach(image, id: id, domain: domain, mode: .xattr) }
        for (id, _, files) in images {
            for (name, bytes) in files {
                #expect(try await CacheFixtures.readAll(cache, id, name) == bytes, "\(id)/\(name)")
            }
        }
        // Unique content: f1–f5, g (4 pages each) and h (2 pages).
        let uniquePages = 6 * 4 + 2
        let statistics = cache.statistics(for: domain)
        #expect(statistics.residentBytes == uniquePages * self.pageSize)
        #expect(cache.residentBytes == uniquePages * self.pageSize)
        // f1 has 3 sharers, f2–f4 have 2: saved = (2 + 3) × 4 pages.
        #expect(statistics.savedBytes == (2 + 3) * 4 * self.pageSize)
        #expect(statistics.fills == uniquePages)
        #expect(statistics.logicalReadBytes == images.flatMap(\.2).reduce(0) { $0 + $1.1.count })
    }

    /// `mkfs.erofs --xattr-inode-digest=trusted.some.name`: the superblock names that prefix, so files share
    /// the same way, and the xattr is an ordinary, listed one.
    @Test func aCustomFingerprintXattrNameSharesTheSame() async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 64 << 20))
        let domain = try TrustDomain("tenant-x")
        for id in ["one", "two"] {
            let image = try CacheFixtures.image(self.files, prefix: (4, "some.name"))
            try cache.attach(image, id: id, domain: domain, mode: .xattr, verify: true)
            let inode = try image.resolve("f1")
            #expect(try image.xattrs(of: inode).map(\.nameString) == ["trusted.some.name"])
            #expect(inode.fingerprint == CacheFixtures.fingerprint(self.files[0].1))
        }
        for id in ["one", "two"] {
            for (name, bytes) in self.files { #expect(try await CacheFixtures.readAll(cache, id, name) == bytes) }
        }
        let statistics = cache.statistics(for: domain)
        #expect(statistics.residentBytes == 5 * 4 * self.pageSize && statistics.verifyFailures == 0)
    }

    @Test func nothingIsSharedAcrossDomains() async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 64 << 20))
        let x = try TrustDomain("x")
        let y = try TrustDomain("y")
        let image = try CacheFixtures.image(self.files)
        try cache.attach(image, id: "in-x", domain: x, mode: .xattr)
        try cache.attach(image, id: "in-y", domain: y, mode: .xattr)
        for id in ["in-x", "in-y"] {
            for (name, bytes) in self.files { #expect(try await CacheFixtures.readAll(cache, id, name) == bytes) }
        }
        #expect(cache.statistics(for: x).residentBytes == 5 * 4 * self.pageSize)
        #expect(cache.statistics(for: y).residentBytes == 5 * 4 * self.pageSize)
        #expect(cache.statistics(for: x).savedBytes == 0)
    }

    /// An image in domain Y claiming domain X's fingerprints with other bytes changes nothing in X.
    @Test func aForgedFingerprintCannotReachAnotherDomain() async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 64 << 20))
        let honest = try CacheFixtures.image(self.files)
        let evil = try CacheFixtures.image(
            [("f1", CacheFixtures.content("evil"))], forging: ["f1": CacheFixtures.fingerprint(self.files[0].1)])
        try cache.attach(honest, id: "honest", domain: try TrustDomain("x"), mode: .xattr)
        try cache.attach(evil, id: "evil", domain: try TrustDomain("y"), mode: .xattr)
        // The forger reads first, so its bytes are cached before the honest image asks.
        #expect(try await CacheFixtures.readAll(cache, "evil", "f1") == CacheFixtures.content("evil"))
        #expect(try await CacheFixtures.readAll(cache, "honest", "f1") == self.files[0].1)
    }

    @Test func modeNoneCachesPrivately() async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 64 << 20))
        let domain = try TrustDomain("x")
        let image = try CacheFixtures.image(self.files)
        try cache.attach(image, id: "one", domain: domain, mode: .none)
        try cache.attach(image, id: "two", domain: domain, mode: .none)
        for id in ["one", "two"] { _ = try await CacheFixtures.readAll(cache, id, "f1") }
        #expect(cache.statistics(for: domain).residentBytes == 2 * 4 * self.pageSize)
    }

    @Test func detachKeepsSharedContentAndDropsTheRest() async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 64 << 20))
        let domain = try TrustDomain("x")
        let images = try self.makeImages()
        for (id, image, _) in images.prefix(2) { try cache.attach(image, id: id, domain: domain, mode: .xattr) }
        for (id, _, files) in images.prefix(2) {
            for (name, _) in files { _ = try await CacheFixtures.readAll(cache, id, name) }
        }
        #expect(cache.residentBytes == 6 * 4 * self.pageSize)
        try cache.detach(id: "a")  // f5 was only in A
        #expect(cache.residentBytes == 5 * 4 * self.pageSize)
        #expect(try await CacheFixtures.readAll(cache, "b", "f1") == self.files[0].1)
        await #expect(throws: PageCacheError(.unknownImage, "")) {
            try await CacheFixtures.readAll(cache, "a", "f1")
        }
        try cache.detach(id: "b")
        #expect(cache.residentBytes == 0)
        #expect(throws: PageCacheError(.unknownImage, "")) { try cache.detach(id: "b") }
    }

    @Test func refusesBadRequests() async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 1 << 20))
        let image = try CacheFixtures.image(self.files)
        try cache.attach(image, id: "a", domain: try TrustDomain("x"), mode: .xattr)
        #expect(throws: PageCacheError(.imageExists, "")) {
            try cache.attach(image, id: "a", domain: try TrustDomain("x"), mode: .xattr)
        }
        #expect(throws: PageCacheError(.invalidArgument, "")) { try TrustDomain("") }
        #expect(throws: PageCacheError(.invalidArgument, "")) { try TrustDomain("has space") }
        #expect(throws: PageCacheError(.invalidArgument, "")) {
            try SharedPageCache(configuration: .init(budgetBytes: 1 << 20, pageSize: 5000))
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 10, alignment: 8)
        defer { buffer.deallocate() }
        await #expect(throws: PageCacheError(.unknownImage, "")) {
            try await cache.read(imageID: "nope", path: "f1", at: 0, into: buffer)
        }
        await #expect(throws: PageCacheError(.notARegularFile, "")) {
            try await cache.read(imageID: "a", path: "/", at: 0, into: buffer)
        }
        await #expect(throws: EROFSError(.notFound, "")) {
            try await cache.read(imageID: "a", path: "missing", at: 0, into: buffer)
        }
        #expect(try await cache.read(imageID: "a", path: "f1", at: 1 << 30, into: buffer) == 0)
    }
}
