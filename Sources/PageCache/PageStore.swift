import Synchronization

/// The page store: resident pages of whole-file sharing, striped over ``CacheShard``s (each a fixed set of
/// page slots with SIEVE eviction, single-flight fills and pinned loans), under the cache's byte budget when
/// no domain shares by chunk.
final class PageStore: Sendable {
    let shards: [CacheShard]
    let pageSize: Int

    /// Splits `budgetBytes` over up to `shardCount` stripes (a power of two no larger than the page count).
    /// - Throws: ``PageCacheError`` (`invalidArgument`) for a budget that holds no page per stripe.
    init(budgetBytes: Int, pageSize: Int, shardCount: Int) throws {
        let pages = budgetBytes / pageSize
        var stripes = 1
        while stripes * 2 <= max(1, min(shardCount, pages)) { stripes *= 2 }
        guard pages >= stripes, pages > 0 else {
            throw PageCacheError(.invalidArgument, "budget of \(budgetBytes) bytes holds no page")
        }
        self.shards = (0..<stripes).map { _ in CacheShard(capacity: pages / stripes, pageSize: pageSize) }
        self.pageSize = pageSize
    }

    /// A store of one page, for a cache whose budget the chunk store holds.
    init(unusedWithPageSize pageSize: Int) {
        self.shards = [CacheShard(capacity: 1, pageSize: pageSize)]
        self.pageSize = pageSize
    }

    func shard(for key: PageKey) -> CacheShard {
        self.shards[Self.shardIndex(key, count: self.shards.count)]
    }

    static func shardIndex(_ key: PageKey, count: Int) -> Int {
        // Fibonacci hashing (Knuth): multiply by 2^64/φ and keep the top bits, which every input bit reaches,
        // so consecutive pages of a file spread evenly over the stripes (`count` is a power of two).
        let mixed = (key.file &* 0xC2B2_AE3D_27D4_EB4F &+ key.page) &* 0x9E37_79B9_7F4A_7C15
        return Int(truncatingIfNeeded: mixed >> (64 - count.trailingZeroBitCount))
    }

    /// The usable budget: whole pages in every shard.
    var budgetBytes: Int { self.shards.count * self.shards[0].capacity * self.pageSize }

    var residentBytes: Int { self.shards.reduce(0) { $0 + $1.residentPages } * self.pageSize }

    /// Bookkeeping beside the page data: slots, eviction lists, the page index.
    var metadataBytes: Int { self.shards.reduce(0) { $0 + $1.metadataBytes } }

    /// Removes the pages of the files with ids `files` from every shard; returns the file of each page
    /// removed (once per page).
    func purge(files: Set<UInt64>) -> [SharedFile] { self.shards.flatMap { $0.purge(files: files) } }
}
