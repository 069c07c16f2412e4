import EROFS
import PageCache
import Testing

/// `readResidentWhole`: all of a range from resident bytes, or nothing, and counted only when all.
@Suite("Whole resident reads")
struct ResidentReadTests {
    let domain = try! TrustDomain("x")

    @Test("a range read whole when every byte is resident, counted then; else nothing, counted nothing")
    func wholeOrNothing() async throws {
        let bytes = CacheFixtures.content("whole", pages: 600)  // past what one fill reads
        for sharing in SharingUnit.allCases {
            let cache = try SharedPageCache(
                configuration: .init(budgetBytes: 8 << 20, shardCount: 1, readaheadPages: 0, sharing: sharing))
            try cache.attach(try CacheFixtures.image([("f", bytes)]), id: "a", domain: self.domain, mode: .xattr)
            let file = try cache.open(imageID: "a", inode: try cache.image(id: "a").resolve("/f"))
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 8)
            defer { buffer.deallocate() }
            func whole(_ offset: Int, _ count: Int) -> [UInt8]? {
                let read = file.readResidentWhole(
                    at: UInt64(offset), into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]))
                return read == 0 ? nil : Array(buffer[0..<read])
            }
            func isNothing(_ offset: Int, _ count: Int) -> Bool { whole(offset, count) == nil }

            #expect(isNothing(0, 4096), "nothing resident yet: \(sharing)")
            #expect(cache.statistics(for: self.domain).logicalReadBytes == 0)
            // The first pages (as many as a fill reads; sharing chunks, the chunks over them) become resident,
            // not the whole file.
            _ = try await file.read(at: 0, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<8192]))
            let before = cache.statistics(for: self.domain)

            #expect(isNothing(4000, 1 << 20), "a range running past what is resident: \(sharing)")
            #expect(cache.statistics(for: self.domain).logicalReadBytes == before.logicalReadBytes, "not counted")
            #expect(cache.statistics(for: self.domain).hits == before.hits)

            #expect(whole(100, 4000) == Array(bytes[100..<4100]), "\(sharing)")
            let after = cache.statistics(for: self.domain)
            #expect(after.logicalReadBytes == before.logicalReadBytes + 4000 && after.hits > before.hits)

            // At the end of the file: what the file has.
            _ = try await CacheFixtures.readAll(cache, "a", "f")
            #expect(whole(bytes.count - 10, 4096) == Array(bytes[(bytes.count - 10)...]), "\(sharing)")
            #expect(whole(1_000_000, 8 * 4096) == Array(bytes[1_000_000..<1_000_000 + 8 * 4096]))
        }
    }
}
