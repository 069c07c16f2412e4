import EROFS
import EROFSTestSupport
import PageCache
import Testing

@Suite("Per-domain quotas")
struct QuotaTests {
    @Test func aDomainAtItsQuotaNeverEvictsAnotherDomain() async throws {
        let pageSize = 4096
        let cache = try SharedPageCache(
            configuration: .init(budgetBytes: 32 * pageSize, shardCount: 1, readaheadPages: 0))
        let x = try TrustDomain("x")
        let y = try TrustDomain("y")
        let yFiles = (0..<5).map { ("y\($0)", CacheFixtures.content("y\($0)", pages: 3)) }  // 20 pages
        let xFiles = (0..<8).map { ("x\($0)", CacheFixtures.content("x\($0)", pages: 3)) }  // 32 pages
        try cache.attach(try CacheFixtures.image(yFiles), id: "y", domain: y, mode: .xattr)
        try cache.attach(try CacheFixtures.image(xFiles), id: "x", domain: x, mode: .xattr)
        cache.setQuota(8 * pageSize, for: x)
        for (name, bytes) in yFiles { #expect(try await CacheFixtures.readAll(cache, "y", name) == bytes) }
        #expect(cache.statistics(for: y).residentBytes == 20 * pageSize)
        for _ in 0..<2 {
            for (name, bytes) in xFiles { #expect(try await CacheFixtures.readAll(cache, "x", name) == bytes) }
        }
        #expect(cache.statistics(for: x).residentBytes <= 8 * pageSize)
        #expect(cache.statistics(for: y).residentBytes == 20 * pageSize, "x evicted y's pages")
        #expect(cache.statistics(for: y).evictions == 0)
        // Lifting the quota lets x use the rest of the budget again.
        cache.setQuota(nil, for: x)
        for (name, _) in xFiles { _ = try await CacheFixtures.readAll(cache, "x", name) }
        #expect(cache.statistics(for: x).residentBytes > 8 * pageSize)
        #expect(cache.residentBytes <= 32 * pageSize)
    }

    /// Two fills of one domain at once, the first held mid-read: the second sees the first's page counted
    /// against the quota, so together they cannot go past it (the second is served without caching).
    @Test func concurrentFillsCannotOvershootTheQuota() async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 1 << 20, readaheadPages: 0))
        let domain = try TrustDomain("q")
        let held = try await HeldFill.start(cache, domain: domain, content: "quota-race", quota: 4096)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { buffer.deallocate() }
        let count = try await held.file.read(at: 4096, into: buffer)
        #expect(Array(buffer[0..<count]) == Array(held.bytes[4096..<8192]))
        held.release()
        #expect(try await held.firstPage.value == Array(held.bytes[0..<4096]))
        #expect(cache.statistics(for: domain).residentBytes == 4096, "one page: the quota")
        #expect(cache.residentBytes == 4096)
    }
}
