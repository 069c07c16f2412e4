import EROFS
import EROFSTestSupport
import Foundation
import PageCache
import Testing

@Suite("Single flight, budget and eviction")
struct ConcurrencyAndEvictionTests {
    let pageSize = 4096

    @Test func sixtyFourReadersOfOnePageFillItOnce() async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 16 << 20))
        let domain = try TrustDomain("x")
        let bytes = CacheFixtures.content("single", pages: 8)
        try cache.attach(try CacheFixtures.image([("f", bytes)]), id: "a", domain: domain, mode: .xattr)
        let results = try await withThrowingTaskGroup(of: [UInt8].self) { group in
            for _ in 0..<64 {
                group.addTask {
                    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
                    defer { buffer.deallocate() }
                    let count = try await cache.read(imageID: "a", path: "f", at: 4096 * 3, into: buffer)
                    return Array(buffer[0..<count])
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0 == Array(bytes[4096 * 3..<4096 * 4]) })
        let statistics = cache.statistics(for: domain)
        #expect(statistics.fills == 1)
        #expect(statistics.hits + statistics.misses >= 64)
    }

    @Test func theBudgetHoldsUnderConcurrentLoad() async throws {
        let budgetPages = 64
        let cache = try SharedPageCache(
            configuration: .init(budgetBytes: budgetPages * 4096, shardCount: 4, readaheadPages: 0))
        let domain = try TrustDomain("x")
        let files = (0..<40).map { ("file-\($0)", CacheFixtures.content("load-\($0)", pages: 5)) }
        try cache.attach(try CacheFixtures.image(files), id: "a", domain: domain, mode: .xattr)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<16 {
                group.addTask {
                    for round in 0..<10 {
                        let (name, bytes) = files[(task * 7 + round * 3) % files.count]
                        let read = try await CacheFixtures.readAll(cache, "a", name)
                        #expect(read == bytes, "\(name)")
                        #expect(cache.residentBytes <= budgetPages * 4096)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(cache.residentBytes <= budgetPages * 4096)
        let statistics = cache.statistics(for: domain)
        #expect(statistics.evictions > 0)
        #expect(statistics.residentBytes == cache.residentBytes)
    }

    /// Consecutive pages of one file spread over all the stripes, so one big file can fill the whole budget.
    /// (The stripe was once taken from middle bits of a product: a file's pages reached 45 of 64 stripes and
    /// such a file used 70 % of the budget.)
    @Test func oneFileCanFillEveryStripe() async throws {
        let cache = try SharedPageCache(
            configuration: .init(budgetBytes: 256 * 4096, shardCount: 64, readaheadPages: 0))
        let bytes = CacheFixtures.content("spread", pages: 600)
        try cache.attach(try CacheFixtures.image([("f", bytes)]), id: "a", domain: try TrustDomain("x"), mode: .xattr)
        #expect(try await CacheFixtures.readAll(cache, "a", "f") == bytes)
        #expect(cache.residentBytes == 256 * 4096)
    }

    /// SIEVE keeps pages that are hit again while a one-pass scan streams through.
    @Test func hotPagesSurviveAScan() async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 32 * 4096, shardCount: 1, readaheadPages: 0))
        let domain = try TrustDomain("x")
        let hot = CacheFixtures.content("hot", pages: 7)  // 8 pages
        let scanned = (0..<20).map { ("scan-\($0)", CacheFixtures.content("scan-\($0)", pages: 5)) }  // 120 pages
        try cache.attach(try CacheFixtures.image([("hot", hot)] + scanned), id: "a", domain: domain, mode: .xattr)
        for _ in 0..<3 { _ = try await CacheFixtures.readAll(cache, "a", "hot") }
        for (name, _) in scanned {
            _ = try await CacheFixtures.readAll(cache, "a", name)
            _ = try await CacheFixtures.readAll(cache, "a", "hot")  // the hot set stays in use during the scan
        }
        let fillsBefore = cache.statistics(for: domain).fills
        #expect(try await CacheFixtures.readAll(cache, "a", "hot") == hot)
        #expect(cache.statistics(for: domain).fills == fillsBefore, "hot pages were evicted by the scan")
    }

    @Test func detachWhileReadsAreInFlight() async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 1 << 20))
        let domain = try TrustDomain("x")
        let files = (0..<10).map { ("f\($0)", CacheFixtures.content("inflight-\($0)", pages: 6)) }
        let image = try CacheFixtures.image(files)
        try cache.attach(image, id: "a", domain: domain, mode: .xattr)
        try cache.attach(image, id: "b", domain: domain, mode: .xattr)
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<12 {
                group.addTask {
                    for round in 0..<20 {
                        let (name, bytes) = files[(task + round) % files.count]
                        do {
                            #expect(try await CacheFixtures.readAll(cache, task % 2 == 0 ? "a" : "b", name) == bytes)
                        } catch let error as PageCacheError {
                            #expect(error.code == .unknownImage)
                        } catch {
                            Issue.record("unexpected \(error)")
                        }
                    }
                }
            }
            group.addTask {
                await Task.yield()
                try? cache.detach(id: "a")
            }
        }
        #expect(cache.registry.imageIDs == ["b"])
        for (name, bytes) in files { #expect(try await CacheFixtures.readAll(cache, "b", name) == bytes) }
    }

    /// A fill that read its sharers before the detach of the only image and publishes after it: the page is
    /// dropped at once instead of holding budget until evicted (nothing can reach it any more).
    @Test func aFillFinishingAfterTheDetachLeavesNothingResident() async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 4 << 20, readaheadPages: 0))
        let domain = try TrustDomain("x")
        let held = try await HeldFill.start(cache, domain: domain, content: "orphan")  // holds the sharer, reading
        try cache.detach(id: "a")
        held.release()
        #expect(try await held.firstPage.value == Array(held.bytes[0..<4096]), "the reader still gets its bytes")
        #expect(cache.residentBytes == 0)
        #expect(cache.statistics(for: domain).residentBytes == 0)
    }

    /// A read that continues the previous one warms the next pages in the background, never past the end.
    @Test func sequentialReadsReadAhead() async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 16 << 20, readaheadPages: 4))
        let domain = try TrustDomain("x")
        let bytes = CacheFixtures.content("sequential", pages: 9)  // 10 pages
        try cache.attach(try CacheFixtures.image([("f", bytes)]), id: "a", domain: domain, mode: .xattr)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { buffer.deallocate() }
        _ = try await cache.read(imageID: "a", path: "f", at: 0, into: buffer)
        _ = try await cache.read(imageID: "a", path: "f", at: 4096, into: buffer)  // sequential: pages 2-5 ahead
        await cache.drainReadahead()
        #expect(cache.statistics(for: domain).fills == 6)
        let fills = cache.statistics(for: domain).fills
        _ = try await cache.read(imageID: "a", path: "f", at: 2 * 4096, into: buffer)
        #expect(cache.statistics(for: domain).fills == fills, "page 2 was not read ahead")
        // Near the end, readahead stops at the last page.
        _ = try await cache.read(imageID: "a", path: "f", at: 3 * 4096, into: buffer)
        _ = try await cache.read(imageID: "a", path: "f", at: 8 * 4096, into: buffer)
        _ = try await cache.read(imageID: "a", path: "f", at: 9 * 4096, into: buffer)
        await cache.drainReadahead()
        #expect(cache.statistics(for: domain).fills == 10)
        #expect(Array(buffer[0..<123]) == Array(bytes[(9 * 4096)...]))
    }

    /// Reading any byte of a compressed extent decodes all of it; the cache keeps the extent's other pages
    /// from that decode instead of decoding the extent again for each of them.
    @Test func aCompressedExtentIsDecodedOncePerMiss() async throws {
        // 720 KB in one extent: within the 256 pages filled around a miss.
        let text = Array(String(repeating: "PageShare decodes each extent once. ", count: 20_000).utf8)
        let noise = TestTree.pattern(200_000, seed: 7)
        let image = try TestImage(options: ["-zlz4hc", "-C65536"]) { root in
            try TestTree.write(root + "/text", text)
            try TestTree.write(root + "/noise", noise)
        }
        defer { image.remove() }
        let opened = try image.open()
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 64 << 20, readaheadPages: 0))
        let domain = try TrustDomain("z")
        try cache.attach(opened, id: "z", domain: domain, mode: .none)
        for (name, bytes) in [("text", text), ("noise", noise)] {
            let before = cache.statistics(for: domain)
            let inode = try opened.resolve("/" + name)
            let decoded = try opened.extents(of: inode).filter {
                if case .encoded = $0.kind { return true } else { return false }
            }
            // mkfs stores the incompressible noise uncompressed: no extent to decode, one miss per page.
            #expect(decoded.isEmpty == (name == "noise"))
            // Pages in a shuffled order: one miss per extent, every page filled once.
            let pages = (bytes.count + 4095) / 4096
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
            defer { buffer.deallocate() }
            for page in (0..<pages).shuffled() {
                let count = try await cache.read(imageID: "z", path: "/" + name, at: UInt64(page * 4096), into: buffer)
                #expect(Array(buffer[0..<count]) == Array(bytes[(page * 4096)..<min(bytes.count, page * 4096 + 4096)]))
            }
            let after = cache.statistics(for: domain)
            #expect(after.fills - before.fills == pages, "\(name): every page filled once")
            if decoded.isEmpty {
                #expect(after.misses - before.misses == pages)
            } else {
                #expect(after.misses - before.misses <= decoded.count, "\(name): at most one miss per extent")
                #expect(after.hits - before.hits >= pages - decoded.count)
            }
        }
    }
}
