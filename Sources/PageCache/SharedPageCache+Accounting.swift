import EROFS
import Metrics
import Synchronization

/// The cache's accounting, read from the counters of each domain and image and from the stores when asked
/// (the admin API) or scraped (``publishMetrics(to:perImage:)``): nothing is kept twice.
extension SharedPageCache {
    /// Publishes the cache's series (see `CacheMetrics`): per-domain gauges
    /// `pageshare_cache_{resident,saved,logical_read,quota}_bytes{domain}`, per-domain counters
    /// `pageshare_cache_{hits,misses,fills,evictions,verify_failures}_total{domain}`, and the global gauges
    /// `pageshare_cache_budget_bytes`, `pageshare_cache_attached_images`, `pageshare_cache_dedup_inodes`;
    /// and the decompressors' `pageshare_decompression_*_total{algorithm}` (see `DecompressionMetrics`).
    /// With `perImage`, also `pageshare_image_*{image}` (see `ImageMetrics`). Call it before each scrape.
    public func publishMetrics(to factory: any MetricsFactory = MetricsSystem.factory, perImage: Bool = false) {
        let statistics = self.allStatistics()
        let snapshot = self.registry.snapshot
        let quotas = snapshot.domains.mapValues(\.quota)
        let (images, files) = (snapshot.images.count, snapshot.files.count)
        let withQuotas = statistics.reduce(into: [TrustDomain: (DomainStatistics, quota: Int?)]()) { result, entry in
            result[entry.key] = (entry.value, quotas[entry.key] ?? nil)
        }
        self.metrics.publish(
            withQuotas, budget: self.budgetBytes, used: self.residentBytes,
            images: images, dedupInodes: files, metadataBytes: self.metadataBytes,
            readErrors: self.readErrors.load(ordering: .relaxed), to: factory)
        self.decompressionMetrics.publish(to: factory)
        if perImage {
            let statistics = snapshot.images.reduce(into: [ByteKey: ImageStatistics]()) { result, attached in
                result[ByteKey(attached.id)] = self.statistics(of: attached)
            }
            self.imageMetrics.publish(statistics, to: factory)
        }
    }

    /// Accounting of attached image `imageID`.
    /// - Throws: ``PageCacheError`` (`unknownImage`).
    public func statistics(forImage imageID: String) throws -> ImageStatistics {
        self.statistics(of: try self.attachedImage(imageID, reading: false))
    }

    private func statistics(of attached: AttachedImage) -> ImageStatistics {
        let files = attached.touchedFiles()
        let pages = files.reduce(0) { $0 + $1.residentPages.load(ordering: .relaxed) }
        let chunks = files.reduce(0) { $0 + self.residentChunkBytes(of: $1) }
        let counters = attached.imageCounters
        return ImageStatistics(
            residentBytes: pages * self.configuration.pageSize + chunks,
            logicalReadBytes: counters.logicalReadBytes.load(ordering: .relaxed),
            hits: counters.hits.load(ordering: .relaxed), misses: counters.misses.load(ordering: .relaxed),
            fills: counters.fills.load(ordering: .relaxed))
    }

    /// Accounting of `domain` (zeros for a domain never attached).
    public func statistics(for domain: TrustDomain) -> DomainStatistics {
        self.allStatistics()[domain]
            ?? DomainStatistics(
                residentBytes: 0, logicalReadBytes: 0, hits: 0, misses: 0, fills: 0, evictions: 0, savedBytes: 0,
                chunkSavedBytes: 0, verifyFailures: 0)
    }

    /// Totals of the whole cache.
    public struct Summary: Sendable, Hashable {
        /// Page data budget (whole pages per shard) and page size, in bytes.
        public var budgetBytes: Int
        public var pageSize: Int
        public var residentBytes: Int
        /// Bookkeeping beside the page data.
        public var metadataBytes: Int
        public var attachedImages: Int
        /// Dedup inodes: distinct cached contents known to the cache.
        public var dedupInodes: Int
        public var sharing: SharingUnit
        /// Chunks resident (``SharingUnit/chunk``), and the bytes of the files' chunk maps (part of
        /// `metadataBytes`).
        public var residentChunks: Int
        public var chunkMapBytes: Int
        /// Chunk store bytes holding no resident chunk: segment tails and holes not yet compacted.
        public var chunkWasteBytes: Int
    }

    /// Totals of the whole cache, for the admin API.
    public var summary: Summary {
        let (images, files) = self.registry.counts
        let maps = self.chunkMapBytes
        return Summary(
            budgetBytes: self.budgetBytes, pageSize: self.configuration.pageSize, residentBytes: self.residentBytes,
            metadataBytes: self.metadataBytes(chunkMaps: maps), attachedImages: images, dedupInodes: files,
            sharing: self.configuration.sharing, residentChunks: self.chunkStore.resident.chunks,
            chunkMapBytes: maps, chunkWasteBytes: self.chunkStore.wasteBytes)
    }

    /// Accounting of every domain, with bytes saved summed over the shared files in one pass.
    public func allStatistics() -> [TrustDomain: DomainStatistics] {
        let snapshot = self.registry.snapshot
        let (domains, files) = (snapshot.domains, snapshot.files)
        var savedByFiles: [ObjectIdentifier: Int] = [:]
        for file in files {
            let sharers = file.sharerCount
            guard sharers > 1 else { continue }
            let resident =
                file.residentPages.load(ordering: .relaxed) * self.configuration.pageSize
                + self.residentChunkBytes(of: file)
            savedByFiles[ObjectIdentifier(file.counters), default: 0] += (sharers - 1) * resident
        }
        let savedByChunks = self.chunkStore.savedBytesByOwner
        return domains.mapValues { counters in
            DomainStatistics(
                residentBytes: counters.residentBytes.load(ordering: .relaxed),
                logicalReadBytes: counters.logicalReadBytes.load(ordering: .relaxed),
                hits: counters.hits.load(ordering: .relaxed), misses: counters.misses.load(ordering: .relaxed),
                fills: counters.fills.load(ordering: .relaxed), evictions: counters.evictions.load(ordering: .relaxed),
                savedBytes: savedByFiles[ObjectIdentifier(counters)] ?? 0,
                chunkSavedBytes: savedByChunks[ObjectIdentifier(counters)] ?? 0,
                verifyFailures: counters.verifyFailures.load(ordering: .relaxed))
        }
    }

    /// The usable page budget: whole pages in every shard.
    var budgetBytes: Int {
        self.configuration.usesChunkStore
            ? self.chunkStore.budgetBytes : self.pages.budgetBytes
    }

    /// Bytes of bookkeeping beside the page data (slots, eviction lists, page index) and of the decoded
    /// metabox and packed-inode blocks the attached images keep (bounded per image).
    public var metadataBytes: Int { self.metadataBytes(chunkMaps: self.chunkMapBytes) }

    func metadataBytes(chunkMaps: Int) -> Int {
        let decoded = self.registry.snapshot.images.reduce(0) { $0 + $1.image.decodedMetadataBytes }
        return self.pages.metadataBytes + self.chunkStore.metadataBytes + chunkMaps + decoded
    }

    /// Bytes of the chunk maps of the files known (the windows cut so far).
    var chunkMapBytes: Int {
        self.registry.snapshot.files.reduce(0) { $0 + ($1.chunkMap?.metadataBytes ?? 0) }
    }

    /// Bytes of page data resident across all domains (never more than the budget).
    public var residentBytes: Int {
        self.pages.residentBytes
            + self.chunkStore.resident.bytes
    }
}
