import EROFS
import NIOCore
import PageCache
import Testing

/// Resident pages lent as `ByteBuffer` views: no copy, and a lent page is never evicted, dropped or reused
/// until the loan goes.
@Suite("Lent pages")
struct PageLoanTests {
    let domain = try! TrustDomain("x")

    /// `files` attached as image `id` in a one-shard cache of `budgetPages` pages without readahead.
    func cache(budgetPages: Int, files: [(String, [UInt8])]) throws -> SharedPageCache {
        let cache = try SharedPageCache(
            configuration: .init(budgetBytes: budgetPages * 4096, shardCount: 1, readaheadPages: 0))
        try cache.attach(try CacheFixtures.image(files), id: "a", domain: self.domain, mode: .xattr)
        return cache
    }

    func open(_ cache: SharedPageCache, _ path: String) throws -> CachedFile {
        try cache.open(imageID: "a", inode: try cache.image(id: "a").resolve("/" + path))
    }

    static func bytes(of loan: PageLoan) -> [UInt8] {
        loan.flatMap { $0.readableBytesView }
    }

    static func address(of buffer: ByteBuffer) -> UnsafeRawPointer? {
        buffer.withUnsafeReadableBytes { $0.baseAddress }
    }

    @Test("a miss hands back a loan of what it published: the bytes, counted once; nothing kept, nothing lent")
    func missLendsWhatItFilled() async throws {
        let bytes = CacheFixtures.content("missed", pages: 8)
        for sharing in SharingUnit.allCases {
            let cache = try SharedPageCache(
                configuration: .init(budgetBytes: 1 << 20, shardCount: 1, readaheadPages: 0, sharing: sharing))
            try cache.attach(try CacheFixtures.image([("f", bytes)]), id: "a", domain: self.domain, mode: .xattr)
            let file = try self.open(cache, "f")
            let loan = try #require(try await file.readLent(at: 5000, maxBytes: 5 * 4096), "\(sharing)")
            #expect(loan.byteCount == 5 * 4096 && Self.bytes(of: loan) == Array(bytes[5000..<5000 + 5 * 4096]))
            let statistics = cache.statistics(for: self.domain)
            #expect(statistics.logicalReadBytes == 5 * 4096, "counted once: \(sharing)")
            #expect(statistics.hits + statistics.misses > 0 && statistics.fills > 0)
            #expect(try await file.readLent(at: UInt64(bytes.count), maxBytes: 4096) == nil, "nothing past the end")
            // Over a domain at its quota of nothing, nothing is kept: nothing is lent, and a read copies.
            cache.setQuota(0, for: self.domain)
            _ = cache.dropPages(domain: self.domain)
            #expect(try await file.readLent(at: 0, maxBytes: 4096) == nil, "\(sharing)")
        }
    }

    @Test func lentPagesAreViewsOfTheCachedBytes() async throws {
        let bytes = CacheFixtures.content("lent", pages: 8)
        let cache = try self.cache(budgetPages: 64, files: [("f", bytes)])
        let file = try self.open(cache, "f")
        #expect(file.borrowResident(at: 0, maxBytes: 4096) == nil, "nothing is resident before a read")
        _ = try await CacheFixtures.readAll(cache, "a", "f")
        let hits = cache.statistics(for: self.domain).hits

        let loan = try #require(file.borrowResident(at: 100, maxBytes: 3 * 4096))
        #expect(loan.byteCount == 3 * 4096)
        #expect(loan.count == 4, "an unaligned range spans four pages")
        #expect(Self.bytes(of: loan) == Array(bytes[100..<100 + 3 * 4096]))
        #expect(cache.statistics(for: self.domain).hits == hits + 4)

        // Past the end: only what the file has.
        let tail = try #require(file.borrowResident(at: UInt64(bytes.count - 10), maxBytes: 4096))
        #expect(Self.bytes(of: tail) == Array(bytes[(bytes.count - 10)...]))
        #expect(file.borrowResident(at: UInt64(bytes.count), maxBytes: 4096) == nil)

        // Two loans of one page are views of the same memory: nothing was copied.
        let again = try #require(file.borrowResident(at: 4096, maxBytes: 4096))
        #expect(Self.address(of: again[0]) == Self.address(of: loan[1]))
    }

    @Test func aLentPageIsNeitherEvictedNorReused() async throws {
        let hot = CacheFixtures.content("hot", pages: 0)  // one partial page
        let others = (0..<12).map { ("o\($0)", CacheFixtures.content("other-\($0)", pages: 1)) }
        let cache = try self.cache(budgetPages: 4, files: [("hot", hot)] + others)
        _ = try await CacheFixtures.readAll(cache, "a", "hot")
        let file = try self.open(cache, "hot")
        let loan = try #require(file.borrowResident(at: 0, maxBytes: 4096))

        // Three passes of twelve two-page files, each read twice (so that SIEVE's hand sweeps the whole
        // queue), through a four-page cache: everything else is evicted over and over, the lent page never.
        for _ in 0..<3 {
            for (name, bytes) in others {
                for _ in 0..<2 { #expect(try await CacheFixtures.readAll(cache, "a", name) == bytes) }
            }
        }
        #expect(cache.residentBytes <= 4 * 4096)
        #expect(Self.bytes(of: loan) == hot, "the lent view kept its bytes while its neighbours were replaced")
        let fills = cache.statistics(for: self.domain).fills
        #expect(try await CacheFixtures.readAll(cache, "a", "hot") == hot)
        #expect(cache.statistics(for: self.domain).fills == fills, "the lent page was never evicted")
    }

    @Test func readsGoOnWhenEverySlotIsLent() async throws {
        let files = (0..<5).map { ("f\($0)", CacheFixtures.content("full-\($0)", pages: 0)) }
        let cache = try self.cache(budgetPages: 4, files: files)
        var loans: [PageLoan] = []
        for (name, _) in files.prefix(4) {
            _ = try await CacheFixtures.readAll(cache, "a", name)
            loans.append(try #require(try self.open(cache, name).borrowResident(at: 0, maxBytes: 4096)))
        }
        // No slot can be had: the fifth file is read without being cached, and still right.
        #expect(try await CacheFixtures.readAll(cache, "a", "f4") == files[4].1)
        #expect(try self.open(cache, "f4").borrowResident(at: 0, maxBytes: 4096) == nil)
        #expect(cache.residentBytes == 4 * 4096)
        for (loan, (_, bytes)) in zip(loans, files) { #expect(Self.bytes(of: loan) == bytes) }
    }

    /// A page dropped while lent (its only image detached) keeps its bytes for the loan, counts as gone at
    /// once, and its slot is free again when the loan goes.
    @Test func aPageDroppedWhileLentIsFreedWhenTheLoanGoes() async throws {
        let bytes = CacheFixtures.content("dropped", pages: 0)
        let cache = try self.cache(budgetPages: 2, files: [("f", bytes)])
        _ = try await CacheFixtures.readAll(cache, "a", "f")
        var loan = try self.open(cache, "f").borrowResident(at: 0, maxBytes: 4096)
        try cache.detach(id: "a")
        #expect(cache.residentBytes == 0)

        let others = (0..<3).map { ("o\($0)", CacheFixtures.content("after-\($0)", pages: 0)) }
        try cache.attach(try CacheFixtures.image(others), id: "a", domain: self.domain, mode: .xattr)
        for (name, bytes) in others { #expect(try await CacheFixtures.readAll(cache, "a", name) == bytes) }
        #expect(cache.residentBytes == 4096, "one slot of two is still lent")
        #expect(Self.bytes(of: try #require(loan)) == bytes)

        loan = nil
        for (name, _) in others { _ = try await CacheFixtures.readAll(cache, "a", name) }
        #expect(cache.residentBytes == 2 * 4096, "the slot came back when the loan went")
    }
}
