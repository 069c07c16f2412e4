import EROFS
import EROFSTestSupport
import PageCache
import Testing

/// The three `--xattr-inode-digest` triples of `../shared/fixtures` (versions A, B and C of one tree, as
/// mkfs.erofs 1.9.3 writes them) share exactly what their manifests say.
@Suite("ishare fixtures from mkfs.erofs 1.9.3", .enabled(if: Fixtures.isAvailable, "needs ../shared/fixtures"))
struct IshareFixtureTests {
    static let triples = ["ishare-plain", "ishare-lz4hc", "ishare-zstd"]

    /// Attaches A, B and C to one domain, reads every file of each through the cache and checks its bytes
    /// against the manifest; returns the domain's statistics and the manifest's ishare figures.
    func readTriple(
        _ triple: String, mode: FingerprintMode, verify: Bool = false
    ) async throws -> (DomainStatistics, FixtureManifest.Ishare) {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 64 << 20, pageSize: 4096))
        let domain = try TrustDomain("fixtures")
        var figures: FixtureManifest.Ishare? = nil
        for version in ["A", "B", "C"] {
            let manifest = try Fixtures.manifest("\(triple)-\(version)")
            figures = manifest.ishare
            let image = try Image(path: manifest.imagePath)
            try cache.attach(image, id: version, domain: domain, mode: mode, verify: verify)
            for entry in manifest.files where entry.type == "file" {
                let bytes = try await CacheFixtures.readAll(cache, version, entry.path)
                let digest = sha256Hex(bytes)
                #expect(digest == entry.sha256, "\(triple)-\(version)/\(entry.path)")
            }
        }
        return (cache.statistics(for: domain), try #require(figures))
    }

    @Test("fingerprint xattrs share as the manifests say", arguments: triples)
    func xattrModeShares(triple: String) async throws {
        let (statistics, figures) = try await self.readTriple(triple, mode: .xattr)
        #expect(statistics.residentBytes == figures.unique_content_bytes_4k_pages)
        #expect(statistics.residentBytes + statistics.savedBytes == figures.nosharing_bytes_4k_pages)
    }

    @Test("verify checks every sha256: fingerprint and shares the same", arguments: triples)
    func verifiedXattrsShare(triple: String) async throws {
        let (statistics, figures) = try await self.readTriple(triple, mode: .xattr, verify: true)
        #expect(statistics.verifyFailures == 0)
        #expect(statistics.residentBytes == figures.unique_content_bytes_4k_pages)
    }

    @Test("digests computed by PageShare find the same sharing", arguments: triples)
    func digestModeShares(triple: String) async throws {
        let (statistics, figures) = try await self.readTriple(triple, mode: .digest)
        #expect(statistics.residentBytes == figures.unique_content_bytes_4k_pages)
    }

    @Test("without sharing every version is cached whole")
    func noneModeDoesNotShare() async throws {
        let (statistics, figures) = try await self.readTriple("ishare-plain", mode: .none)
        #expect(statistics.residentBytes == figures.nosharing_bytes_4k_pages)
        #expect(statistics.savedBytes == 0)
    }

    /// A digest-mode image and an xattr-mode image of one domain share: both key content as mkfs.erofs's
    /// `sha256:` value.
    @Test func digestAndXattrImagesShareOneKey() async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 64 << 20, pageSize: 4096))
        let domain = try TrustDomain("fixtures")
        let manifest = try Fixtures.manifest("ishare-plain-A")
        try cache.attach(try Image(path: manifest.imagePath), id: "x", domain: domain, mode: .xattr)
        try cache.attach(try Image(path: manifest.imagePath), id: "d", domain: domain, mode: .digest)
        let file = try #require(manifest.files.first { $0.type == "file" && $0.size > 8192 })
        for id in ["x", "d"] { _ = try await CacheFixtures.readAll(cache, id, file.path) }
        #expect(cache.statistics(for: domain).residentBytes == Int((file.size + 4095) / 4096 * 4096))
    }
}
