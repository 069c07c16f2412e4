import EROFS
import EROFSTestSupport
import Foundation
import MetricsTestKit
import NIOCore
import Testing

@testable import PageCache

/// Sharing by content-defined chunk (`sharing: chunk`): exact bytes, what is held once, the byte
/// comparison that guards every join, domains, the budget, quotas and loans.
@Suite("Sharing by chunk")
struct ChunkSharingTests {
    static func cache(
        budget: Int = 64 << 20, shards: Int = 64, readahead: Int = 16, colliding: Bool = false
    ) throws -> SharedPageCache {
        var configuration = SharedPageCache.Configuration(
            budgetBytes: budget, shardCount: shards, readaheadPages: readahead, sharing: .chunk)
        configuration.collidingChunkIdentities = colliding
        return try SharedPageCache(configuration: configuration)
    }

    /// Two versions of a library: the second has a 100-byte header in front and 64 bytes changed in the
    /// middle, so that no 4 KiB-aligned page and no whole file is equal.
    static let version1 = PseudoRandomBytes.make(2 << 20 + 777, seed: 41)
    static let version2: [UInt8] = {
        var bytes = PseudoRandomBytes.make(100, seed: 42) + version1
        bytes.replaceSubrange(700_000..<700_064, with: PseudoRandomBytes.make(64, seed: 43))
        return bytes
    }()

    /// The unique bytes of `files` cut as the cache cuts them (1 MiB windows, 4 KiB average), counted
    /// independently of the store: Σ length over distinct (XXH3-128, length).
    static func uniqueChunkBytes(_ files: [[UInt8]]) -> Int {
        let chunker = ContentDefinedChunker(averageBytes: 4096)
        var seen: Set<ChunkIdentity> = []
        var unique = 0
        for file in files {
            file.withUnsafeBytes { bytes in
                for start in stride(from: 0, to: bytes.count, by: 1 << 20) {
                    let window = UnsafeRawBufferPointer(rebasing: bytes[start..<min(bytes.count, start + (1 << 20))])
                    chunker.forEachChunk(of: window) { chunk in
                        if seen.insert(ChunkIdentity(of: chunk)).inserted { unique += chunk.count }
                    }
                }
            }
        }
        return unique
    }

    @Test("two versions of a file hold their common chunks once: resident = the independent count of unique chunks")
    func versionsShareTheirChunks() async throws {
        let cache = try Self.cache()
        let domain = try TrustDomain("x")
        try cache.attach(try CacheFixtures.image([("lib.so", Self.version1)]), id: "v1", domain: domain, mode: .xattr)
        try cache.attach(try CacheFixtures.image([("lib.so", Self.version2)]), id: "v2", domain: domain, mode: .xattr)
        #expect(try await CacheFixtures.readAll(cache, "v1", "lib.so") == Self.version1)
        #expect(try await CacheFixtures.readAll(cache, "v2", "lib.so") == Self.version2)
        await cache.drainReadahead()
        let unique = Self.uniqueChunkBytes([Self.version1, Self.version2])
        let statistics = cache.statistics(for: domain)
        #expect(statistics.residentBytes == unique)
        #expect(cache.residentBytes == unique)
        #expect(statistics.savedBytes == 0, "no whole file is equal")
        #expect(statistics.chunkSavedBytes == Self.version1.count + Self.version2.count - unique)
        #expect(Double(unique) < 1.02 * Double(Self.version2.count), "\(unique) bytes for two versions")
        #expect(try cache.statistics(forImage: "v2").residentBytes == Self.version2.count)
        let metrics = TestMetrics()
        cache.publishMetrics(to: metrics)
        let chunkSaved = try metrics.expectGauge("pageshare_cache_chunk_saved_bytes", [("domain", "x")])
        #expect(chunkSaved.lastValue == Double(statistics.chunkSavedBytes))
        let summary = cache.summary
        #expect(summary.sharing == .chunk && summary.residentBytes == unique)
        #expect(summary.chunkMapBytes > 0 && summary.chunkMapBytes * 100 < Self.version1.count + Self.version2.count)
        // Read again: every chunk is a hit now.
        let fills = statistics.fills
        #expect(try await CacheFixtures.readAll(cache, "v2", "lib.so") == Self.version2)
        #expect(cache.statistics(for: domain).fills == fills)
    }

    @Test("equal files keep the whole-file fast path: one chunk map, saved bytes counted as whole-file sharing")
    func equalFilesShareOneMap() async throws {
        let cache = try Self.cache()
        let domain = try TrustDomain("x")
        for id in ["a", "b", "c"] {
            try cache.attach(try CacheFixtures.image([("f", Self.version1)]), id: id, domain: domain, mode: .xattr)
            #expect(try await CacheFixtures.readAll(cache, id, "f") == Self.version1)
        }
        await cache.drainReadahead()
        let statistics = cache.statistics(for: domain)
        #expect(cache.summary.dedupInodes == 1)
        #expect(statistics.residentBytes == Self.uniqueChunkBytes([Self.version1]))
        #expect(statistics.savedBytes == 2 * Self.version1.count)
        #expect(statistics.chunkSavedBytes == Self.version1.count - statistics.residentBytes)
    }

    @Test("with every identity made equal, only the byte comparison decides: no file ever reads another's bytes")
    func collidingIdentitiesNeverShareDifferentBytes() async throws {
        // A small cache, so that chunks are evicted and refilled by the other file under the same key.
        let cache = try Self.cache(budget: 512 << 10, shards: 1, readahead: 0, colliding: true)
        let domain = try TrustDomain("x")
        let a = PseudoRandomBytes.make(600_000, seed: 1)
        var b = a
        for offset in stride(from: 5000, to: b.count, by: 9000) { b[offset] ^= 0xFF }
        let same = a
        try cache.attach(try CacheFixtures.image([("f", a)]), id: "a", domain: domain, mode: .digest)
        try cache.attach(try CacheFixtures.image([("f", b)]), id: "b", domain: domain, mode: .digest)
        try cache.attach(try CacheFixtures.image([("g", same + [1])]), id: "c", domain: domain, mode: .digest)
        for round in 0..<3 {
            #expect(try await CacheFixtures.readAll(cache, "a", "f") == a, "round \(round)")
            #expect(try await CacheFixtures.readAll(cache, "b", "f") == b, "round \(round)")
            #expect(try await CacheFixtures.readAll(cache, "c", "g") == same + [1], "round \(round)")
            #expect(cache.residentBytes <= 512 << 10)
        }
    }

    @Test("equal bytes in two domains are held twice, and nothing is saved")
    func domainsNeverShareChunks() async throws {
        let cache = try Self.cache()
        let x = try TrustDomain("x")
        let y = try TrustDomain("y")
        try cache.attach(try CacheFixtures.image([("f", Self.version1)]), id: "in-x", domain: x, mode: .xattr)
        try cache.attach(try CacheFixtures.image([("f", Self.version2)]), id: "in-y", domain: y, mode: .xattr)
        #expect(try await CacheFixtures.readAll(cache, "in-x", "f") == Self.version1)
        #expect(try await CacheFixtures.readAll(cache, "in-y", "f") == Self.version2)
        await cache.drainReadahead()
        #expect(cache.statistics(for: x).residentBytes == Self.uniqueChunkBytes([Self.version1]))
        #expect(cache.statistics(for: y).residentBytes == Self.uniqueChunkBytes([Self.version2]))
        #expect(cache.statistics(for: x).chunkSavedBytes == 0 && cache.statistics(for: y).chunkSavedBytes == 0)
    }

    @Test("a domain sharing whole files beside one sharing chunks: one budget, no chunk shared below its files")
    func sharingPerDomain() async throws {
        let chunks = try TrustDomain("chunks")
        let files = try TrustDomain("files")
        // The cache's default is `file`; one domain asks for chunks, so the chunk store holds the budget.
        var configuration = SharedPageCache.Configuration(budgetBytes: 64 << 20, readaheadPages: 0, sharing: .file)
        configuration.domainSharing = [chunks: .chunk]
        let cache = try SharedPageCache(configuration: configuration)
        #expect(cache.registry.sharing(for: chunks) == .chunk && cache.registry.sharing(for: files) == .file)
        for (domain, name) in [(chunks, "c"), (files, "f")] {
            try cache.attach(
                try CacheFixtures.image([("lib.so", Self.version1)]), id: "\(name)1", domain: domain, mode: .xattr)
            try cache.attach(
                try CacheFixtures.image([("lib.so", Self.version2)]), id: "\(name)2", domain: domain, mode: .xattr)
            try cache.attach(
                try CacheFixtures.image([("lib.so", Self.version1)]), id: "\(name)3", domain: domain, mode: .xattr)
            for (id, bytes) in [("1", Self.version1), ("2", Self.version2), ("3", Self.version1)] {
                #expect(try await CacheFixtures.readAll(cache, name + id, "lib.so") == bytes)
            }
        }
        await cache.drainReadahead()
        let chunked = cache.statistics(for: chunks)
        #expect(chunked.residentBytes == Self.uniqueChunkBytes([Self.version1, Self.version2]))
        #expect(chunked.chunkSavedBytes > 0)
        // The file domain: the two versions held whole, the equal file once (whole-file sharing only).
        let whole = cache.statistics(for: files)
        #expect(whole.residentBytes == Self.version1.count + Self.version2.count)
        #expect(whole.savedBytes == Self.version1.count)
        #expect(whole.chunkSavedBytes == 0)
        #expect(cache.residentBytes == chunked.residentBytes + whole.residentBytes)
        #expect(cache.summary.budgetBytes == 64 << 20)

        // One budget under pressure: both domains stay exact and the budget holds.
        var small = configuration
        small.budgetBytes = 1 << 20
        let tight = try SharedPageCache(configuration: small)
        for (domain, name) in [(chunks, "c"), (files, "f")] {
            try tight.attach(
                try CacheFixtures.image([("lib.so", Self.version1)]), id: "\(name)1", domain: domain, mode: .xattr)
            try tight.attach(
                try CacheFixtures.image([("lib.so", Self.version2)]), id: "\(name)2", domain: domain, mode: .xattr)
        }
        for round in 0..<2 {
            for name in ["c", "f"] {
                #expect(try await CacheFixtures.readAll(tight, name + "1", "lib.so") == Self.version1, "\(round)")
                #expect(try await CacheFixtures.readAll(tight, name + "2", "lib.so") == Self.version2, "\(round)")
                #expect(tight.residentBytes <= 1 << 20)
            }
        }
        #expect(tight.statistics(for: files).evictions > 0 && tight.statistics(for: chunks).evictions > 0)
    }

    @Test("sixteen readers over a cache a tenth of the data: exact bytes, the budget holds, evictions happen")
    func budgetHoldsUnderConcurrentLoad() async throws {
        let budget = 640 << 10
        let cache = try Self.cache(budget: budget, shards: 4, readahead: 0)
        let domain = try TrustDomain("x")
        let files = (0..<12).map { ("file-\($0)", PseudoRandomBytes.make(500_000 + $0 * 1000, seed: UInt64($0))) }
        try cache.attach(try CacheFixtures.image(files), id: "a", domain: domain, mode: .xattr)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<16 {
                group.addTask {
                    for round in 0..<4 {
                        let (name, bytes) = files[(task * 5 + round * 3) % files.count]
                        let read = try await CacheFixtures.readAll(cache, "a", name)
                        #expect(read == bytes, "\(name)")
                        #expect(cache.residentBytes <= budget)
                    }
                }
            }
            try await group.waitForAll()
        }
        let statistics = cache.statistics(for: domain)
        #expect(statistics.evictions > 0)
        #expect(statistics.residentBytes == cache.residentBytes)
        let summary = cache.summary
        #expect(summary.budgetBytes <= budget)
        #expect(summary.chunkWasteBytes >= 0 && summary.chunkWasteBytes + summary.residentBytes <= summary.budgetBytes)
    }

    @Test("a domain at its quota replaces its own chunks and never goes past the quota")
    func quotaHolds() async throws {
        let cache = try Self.cache(budget: 8 << 20, shards: 2, readahead: 0)
        let limited = try TrustDomain("limited")
        let other = try TrustDomain("other")
        cache.setQuota(256 << 10, for: limited)
        try cache.attach(try CacheFixtures.image([("f", Self.version1)]), id: "l", domain: limited, mode: .xattr)
        try cache.attach(try CacheFixtures.image([("f", Self.version2)]), id: "o", domain: other, mode: .xattr)
        #expect(try await CacheFixtures.readAll(cache, "o", "f") == Self.version2)
        let otherResident = cache.statistics(for: other).residentBytes
        for _ in 0..<2 {
            #expect(try await CacheFixtures.readAll(cache, "l", "f") == Self.version1)
            #expect(cache.statistics(for: limited).residentBytes <= 256 << 10)
        }
        #expect(cache.statistics(for: limited).residentBytes > 128 << 10, "the quota is used, not left empty")
        #expect(cache.statistics(for: other).residentBytes == otherResident, "the other domain lost nothing")
    }

    @Test("lent chunk bytes stay put while the cache turns over around them; detach drops what only it held")
    func loansAndDetach() async throws {
        let cache = try Self.cache(budget: 512 << 10, shards: 1, readahead: 0)
        let domain = try TrustDomain("x")
        let other = PseudoRandomBytes.make(3 << 20, seed: 9)
        try cache.attach(try CacheFixtures.image([("f", Self.version1)]), id: "a", domain: domain, mode: .xattr)
        try cache.attach(try CacheFixtures.image([("g", other)]), id: "b", domain: domain, mode: .xattr)
        let file = try cache.open(imageID: "a", inode: try cache.image(id: "a").resolve("f"))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 8)
        defer { buffer.deallocate() }
        #expect(try await file.read(at: 10_000, into: buffer) == 64 << 10)
        let loan = try #require(file.borrowResident(at: 10_000, maxBytes: 64 << 10))
        #expect(loan.byteCount == 64 << 10)
        #expect(try await CacheFixtures.readAll(cache, "b", "g") == other)
        #expect(cache.statistics(for: domain).evictions > 0)
        let lent = loan.flatMap { Array($0.readableBytesView) }
        #expect(lent == Array(Self.version1[10_000..<10_000 + (64 << 10)]))
        try cache.detach(id: "b")
        #expect(cache.residentBytes == cache.statistics(for: domain).residentBytes)
        #expect(cache.statistics(for: domain).residentBytes <= 1 << 20 + 16 << 10, "only a's window is left")
        try cache.detach(id: "a")
        #expect(cache.residentBytes == 0)
    }

    static func archivedCache(_ directory: String?, retention: Duration? = nil) throws -> SharedPageCache {
        var configuration = SharedPageCache.Configuration(budgetBytes: 64 << 20, readaheadPages: 0, sharing: .chunk)
        configuration.chunkMapDirectory = directory
        if let retention { configuration.chunkMapRetention = retention }
        return try SharedPageCache(configuration: configuration)
    }

    /// Reads `count` bytes at `offset` of `path` in a new cache over `directory`; returns them and the fills.
    static func coldRead(
        _ directory: String?, _ image: Image, _ path: String, at offset: UInt64, count: Int
    ) async throws -> ([UInt8], Int) {
        let cache = try Self.archivedCache(directory)
        let domain = try TrustDomain("x")
        try cache.attach(image, id: "a", domain: domain, mode: .xattr)
        let file = try cache.open(imageID: "a", inode: try image.resolve(path))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 8)
        defer { buffer.deallocate() }
        let read = try await file.read(at: offset, into: buffer)
        return (Array(buffer[0..<read]), cache.statistics(for: domain).fills)
    }

    @Test("chunk maps survive a restart: a cold range read after it fills only the chunks under the range")
    func chunkMapsPersist() async throws {
        let directory = try TemporaryDirectory("chunk-maps")
        defer { directory.remove() }
        let image = try CacheFixtures.image([("lib.so", Self.version2)])
        let first = try Self.archivedCache(directory.path)
        try first.attach(image, id: "a", domain: try TrustDomain("x"), mode: .xattr)
        #expect(try await CacheFixtures.readAll(first, "a", "lib.so") == Self.version2)
        let archives = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(archives.count == 1 && archives[0].hasSuffix(".chunks"), "\(archives)")
        let archiveBytes = try FileManager.default.attributesOfItem(atPath: directory.path + "/" + archives[0])[.size]
        #expect((archiveBytes as? Int ?? .max) * 100 < Self.version2.count, "the map is under 1 % of the content")

        let expected = Array(Self.version2[1_500_000..<1_504_096])
        let (withMap, fillsWithMap) = try await Self.coldRead(
            directory.path, image, "lib.so", at: 1_500_000, count: 4096)
        let (withoutMap, fillsWithout) = try await Self.coldRead(nil, image, "lib.so", at: 1_500_000, count: 4096)
        #expect(withMap == expected && withoutMap == expected)
        #expect(fillsWithMap <= 2, "\(fillsWithMap) chunks filled")
        #expect(fillsWithout > 50, "without the map the window is cut: \(fillsWithout) chunks stored")
        // Detaching the last image of the content removes its map.
        try first.detach(id: "a")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test("kept maps unused for the retention period are swept when a cache is made; reading one keeps it")
    func unusedMapsAreSwept() async throws {
        let directory = try TemporaryDirectory("chunk-maps")
        defer { directory.remove() }
        let image = try CacheFixtures.image([("lib.so", Self.version1)])
        let first = try Self.archivedCache(directory.path)
        try first.attach(image, id: "a", domain: try TrustDomain("x"), mode: .xattr)
        #expect(try await CacheFixtures.readAll(first, "a", "lib.so") == Self.version1)
        let used = directory.path + "/" + (try FileManager.default.contentsOfDirectory(atPath: directory.path))[0]
        // A map of content gone while the daemon was down, and a file that is not a map: 60 days old; the
        // map in use was last written 20 days ago.
        let gone = directory.path + "/" + String(repeating: "ab", count: 32) + ".chunks"
        let other = directory.path + "/notes.txt"
        for (path, days) in [(gone, 60.0), (other, 60), (used, 20)] {
            if path != used { #expect(FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3]))) }
            let old = Date().addingTimeInterval(-days * 24 * 3600)
            try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: path)
        }
        // A restart (30-day retention: the 60-day-old map goes), then a first open reads the map in use,
        // which marks it used: a later sweep with a 10-day retention keeps it.
        let (read, fills) = try await Self.coldRead(directory.path, image, "lib.so", at: 0, count: 4096)
        #expect(read == Array(Self.version1[0..<4096]) && fills <= 2, "the map was read, not cut again")
        #expect(!FileManager.default.fileExists(atPath: gone))
        _ = try Self.archivedCache(directory.path, retention: .seconds(10 * 24 * 3600))
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: directory.path))
        #expect(left == [(used as NSString).lastPathComponent, "notes.txt"], "\(left)")
    }

    @Test("a damaged archive or one that no longer agrees with the bytes costs a cut, never wrong bytes")
    func staleOrDamagedArchives() async throws {
        let directory = try TemporaryDirectory("chunk-maps")
        defer { directory.remove() }
        let honest = try CacheFixtures.image([("lib.so", Self.version1)])
        let first = try Self.archivedCache(directory.path)
        try first.attach(honest, id: "a", domain: try TrustDomain("x"), mode: .xattr)
        #expect(try await CacheFixtures.readAll(first, "a", "lib.so") == Self.version1)
        // Other bytes under the same fingerprint (so the same archive): the map read back does not agree.
        let other = try CacheFixtures.image(
            [("lib.so", Self.version2[..<Self.version1.count].map { $0 })],
            forging: ["lib.so": CacheFixtures.fingerprint(Self.version1)])
        let path = directory.path + "/" + (try FileManager.default.contentsOfDirectory(atPath: directory.path))[0]
        let archived = try #require(FileManager.default.contents(atPath: path)).count
        let (stale, _) = try await Self.coldRead(directory.path, other, "lib.so", at: 1_000_000, count: 200_000)
        #expect(stale == Array(Self.version2[1_000_000..<1_200_000]))
        let recut = try #require(FileManager.default.contents(atPath: path)).count
        #expect(recut > archived, "the window that disagreed was cut again and recorded")
        // A torn last record and garbage after it: the records before still serve, the rest is cut again.
        var bytes = try #require(FileManager.default.contents(atPath: path))
        bytes.removeLast(30)
        bytes.append(contentsOf: PseudoRandomBytes.make(100, seed: 77))
        #expect(FileManager.default.createFile(atPath: path, contents: bytes))
        for offset in [0, 1_500_000, UInt64(Self.version1.count) - 5000] {
            let (read, _) = try await Self.coldRead(directory.path, honest, "lib.so", at: offset, count: 5000)
            #expect(read == Array(Self.version1[Int(offset)..<min(Self.version1.count, Int(offset) + 5000)]))
        }
    }

    @Test(
        "every file of every fixture reads exact through a small chunk cache",
        .enabled(if: Fixtures.isAvailable, "needs ../shared/fixtures"), arguments: Fixtures.names)
    func fixturesAreExact(name: String) async throws {
        let manifest = try Fixtures.manifest(name)
        let cache = try Self.cache(budget: 1 << 20, shards: 2)
        let image = try Image(path: manifest.imagePath, devicePaths: manifest.devicePaths)
        try cache.attach(image, id: name, domain: try TrustDomain("fixtures"), mode: .digest)
        for entry in manifest.files where entry.type == "file" {
            guard entry.size > 64 << 20 else {
                let bytes = try await CacheFixtures.readAll(cache, name, entry.path)
                #expect(sha256Hex(bytes) == entry.sha256, "\(name)/\(entry.path)")
                continue
            }
            // The 5 GiB sparse files: ranges at the start, across a window edge, in the middle and at the end,
            // against the image read directly.
            let inode = try image.resolve(entry.path)
            let file = try cache.open(imageID: name, inode: inode)
            for start in [0, UInt64(3 << 20) - 5000, inode.size / 2 + 12345, inode.size - 70_000] {
                var expected = [UInt8](repeating: 0xEE, count: 70_000)
                let direct = try expected.withUnsafeMutableBytes { try image.read(inode, at: start, into: $0) }
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 70_000, alignment: 8)
                defer { buffer.deallocate() }
                let cached = try await file.read(at: start, into: buffer)
                #expect(cached == direct && Array(buffer[0..<cached]) == expected, "\(name)/\(entry.path) at \(start)")
            }
        }
        await cache.drainReadahead()
        #expect(cache.residentBytes <= 1 << 20)
    }
}
