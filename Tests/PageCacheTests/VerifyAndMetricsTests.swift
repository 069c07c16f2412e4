import EROFS
import EROFSTestSupport
import MetricsTestKit
import PageCache
import Testing

@Suite("Verified sharing and metrics")
struct VerifyAndMetricsTests {
    let files = (1...3).map { ("f\($0)", CacheFixtures.content("f\($0)")) }

    /// Within one domain, a `verify` image whose f1 claims the honest f1's fingerprint with other bytes is
    /// cached privately: each image reads its own bytes, whichever reads first.
    @Test(arguments: [true, false])
    func aForgedFileNeverReachesOtherImagesWhenVerified(forgerFirst: Bool) async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 16 << 20))
        let domain = try TrustDomain("x")
        let forged = CacheFixtures.content("forged")
        let evil = try CacheFixtures.image(
            [("f1", forged)], forging: ["f1": CacheFixtures.fingerprint(self.files[0].1)])
        try cache.attach(try CacheFixtures.image(self.files), id: "honest", domain: domain, mode: .xattr, verify: true)
        try cache.attach(evil, id: "evil", domain: domain, mode: .xattr, verify: true)
        let order = forgerFirst ? ["evil", "honest"] : ["honest", "evil"]
        for id in order {
            let expected = id == "evil" ? forged : self.files[0].1
            #expect(try await CacheFixtures.readAll(cache, id, "f1") == expected, "\(id)")
        }
        #expect(cache.statistics(for: domain).verifyFailures == 1)
    }

    @Test func verifiedHonestImagesStillShare() async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 16 << 20))
        let domain = try TrustDomain("x")
        let image = try CacheFixtures.image(self.files)
        try cache.attach(image, id: "a", domain: domain, mode: .xattr, verify: true)
        try cache.attach(image, id: "b", domain: domain, mode: .xattr, verify: true)
        for id in ["a", "b"] {
            for (name, bytes) in self.files { #expect(try await CacheFixtures.readAll(cache, id, name) == bytes) }
        }
        let statistics = cache.statistics(for: domain)
        #expect(statistics.verifyFailures == 0)
        #expect(statistics.residentBytes == 3 * 4 * 4096)
        #expect(statistics.savedBytes == 3 * 4 * 4096)
    }

    /// Digest mode shares by content even when the images carry no (or lying) fingerprints.
    @Test func digestModeSharesByContent() async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 16 << 20))
        let domain = try TrustDomain("x")
        let labelled = try CacheFixtures.image(self.files)
        let mislabelled = try CacheFixtures.image(
            self.files, forging: ["f1": [UInt8](repeating: 7, count: 32), "f2": [UInt8](repeating: 9, count: 32)])
        try cache.attach(labelled, id: "a", domain: domain, mode: .digest)
        try cache.attach(mislabelled, id: "b", domain: domain, mode: .digest)
        for id in ["a", "b"] {
            for (name, bytes) in self.files { #expect(try await CacheFixtures.readAll(cache, id, name) == bytes) }
        }
        #expect(cache.statistics(for: domain).residentBytes == 3 * 4 * 4096)
    }

    /// Digests computed at attach, on the fill threads, with progress; opens then need no hashing.
    @Test func digestsPrecomputedWithProgress() async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 16 << 20, fillThreads: 2))
        let domain = try TrustDomain("x")
        let image = try CacheFixtures.image(self.files)
        try cache.attach(image, id: "a", domain: domain, mode: .digest)
        try cache.attach(image, id: "plain", domain: domain, mode: .xattr)
        #expect(try cache.digestProgress(imageID: "a").state == .idle)
        try await cache.precomputeDigests(imageID: "a")
        let progress = try cache.digestProgress(imageID: "a")
        let total = self.files.reduce(0) { $0 + UInt64($1.1.count) }
        #expect(
            progress.state == .ready && progress.filesDone == self.files.count
                && progress.filesTotal == self.files.count)
        #expect(progress.bytesDone == total && progress.bytesTotal == total && progress.percent == 100)
        try await cache.precomputeDigests(imageID: "plain")
        #expect(try cache.digestProgress(imageID: "plain").state == .idle, "xattr mode has nothing to compute")
        for (name, bytes) in self.files {
            let inode = try image.resolve(name)
            let file = try #require(
                try cache.openWithoutHashing(imageID: "a", inode: inode), "\(name) needs no hashing")
            #expect(file.contentDigest == CacheFixtures.digest(bytes))
        }
        await #expect(throws: PageCacheError(.unknownImage, "")) { try await cache.precomputeDigests(imageID: "nope") }
    }

    /// Per-image accounting: what each image's readers read, and the pages held for the files it read.
    @Test func statisticsPerImage() async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 16 << 20, readaheadPages: 0))
        let domain = try TrustDomain("x")
        let image = try CacheFixtures.image(self.files)
        try cache.attach(image, id: "a", domain: domain, mode: .xattr)
        try cache.attach(image, id: "b", domain: domain, mode: .xattr)
        let (name, bytes) = self.files[0]
        let pages = (bytes.count + 4095) / 4096
        _ = try await CacheFixtures.readAll(cache, "a", name)
        _ = try await CacheFixtures.readAll(cache, "b", name)
        let a = try cache.statistics(forImage: "a")
        let b = try cache.statistics(forImage: "b")
        #expect(a.logicalReadBytes == bytes.count && b.logicalReadBytes == bytes.count)
        #expect(a.fills == pages && a.misses == pages, "a read first and filled every page")
        #expect(b.fills == 0 && b.hits >= pages, "b found a's pages")
        #expect(a.residentBytes == pages * 4096 && b.residentBytes == pages * 4096, "shared pages count for both")
        #expect(throws: PageCacheError(.unknownImage, "")) { try cache.statistics(forImage: "nope") }
    }

    @Test func gaugesPerDomain() async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 16 << 20))
        let x = try TrustDomain("x")
        let image = try CacheFixtures.image(self.files)
        try cache.attach(image, id: "a", domain: x, mode: .xattr)
        try cache.attach(image, id: "b", domain: x, mode: .xattr)
        for id in ["a", "b"] { _ = try await CacheFixtures.readAll(cache, id, "f1") }
        let metrics = TestMetrics()
        cache.publishMetrics(to: metrics)
        let dimensions = [("domain", "x")]
        let resident = try metrics.expectGauge("pageshare_cache_resident_bytes", dimensions)
        let saved = try metrics.expectGauge("pageshare_cache_saved_bytes", dimensions)
        let logical = try metrics.expectGauge("pageshare_cache_logical_read_bytes", dimensions)
        #expect(resident.lastValue == Double(4 * 4096))
        #expect(saved.lastValue == Double(4 * 4096))
        #expect(logical.lastValue == Double(2 * self.files[0].1.count))
    }
}
