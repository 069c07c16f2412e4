import PageCache

/// Response and request bodies of the admin API (see `openapi.yaml`).
public enum AdminBodies {
    public struct ImageList: Codable, Sendable {
        public var images: [ImageStatus]
    }

    /// A domain: its quota, images and accounting.
    public struct DomainStatus: Codable, Sendable, Equatable {
        public var name: String
        /// Absent: no quota.
        public var quotaBytes: Int?
        public var images: [String]
        /// What the domain shares by: `file` or `chunk`.
        public var sharing: String
        public var residentBytes: Int
        /// Bytes the cache holds once instead of once per image: (sharers − 1) × resident bytes, summed.
        public var savedBytes: Int
        /// Saved on top of that by chunks held once (`sharing: chunk`): Σ (references − 1) × length.
        public var chunkSavedBytes: Int
        public var logicalReadBytes: Int
        public var hits: Int
        public var misses: Int
        public var fills: Int
        public var evictions: Int
        public var verifyFailures: Int

        init(
            name: String, quotaBytes: Int?, images: [String], sharing: SharingUnit, statistics: DomainStatistics
        ) {
            self.name = name
            self.quotaBytes = quotaBytes
            self.images = images
            self.sharing = sharing.rawValue
            self.residentBytes = statistics.residentBytes
            self.savedBytes = statistics.savedBytes
            self.chunkSavedBytes = statistics.chunkSavedBytes
            self.logicalReadBytes = statistics.logicalReadBytes
            self.hits = statistics.hits
            self.misses = statistics.misses
            self.fills = statistics.fills
            self.evictions = statistics.evictions
            self.verifyFailures = statistics.verifyFailures
        }
    }

    public struct DomainList: Codable, Sendable {
        public var domains: [DomainStatus]
    }

    /// The whole cache.
    public struct CacheStatus: Codable, Sendable, Equatable {
        public var budgetBytes: Int
        public var pageSize: Int
        public var residentBytes: Int
        public var metadataBytes: Int
        public var savedBytes: Int
        public var chunkSavedBytes: Int
        public var attachedImages: Int
        public var dedupInodes: Int
        public var hits: Int
        public var misses: Int
        /// `file` or `chunk`.
        public var sharing: String
        public var residentChunks: Int
        /// Bytes of the files' chunk maps (part of `metadataBytes`).
        public var chunkMapBytes: Int
        /// Chunk store bytes holding no resident chunk: segment tails and holes not yet compacted.
        public var chunkWasteBytes: Int
    }

    /// `PUT /v1/admin/domains/{domain}/quota`: bytes, or null for no quota.
    public struct QuotaRequest: Codable, Sendable {
        public var bytes: Int?
        public init(bytes: Int?) { self.bytes = bytes }

        private enum CodingKeys: String, CodingKey { case bytes }

        /// `bytes` must be present (null removes the quota): a missing key is a malformed request.
        public init(from decoder: any Decoder) throws {
            self.bytes = try decoder.container(keyedBy: CodingKeys.self).decode(Int?.self, forKey: .bytes)
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(self.bytes, forKey: .bytes)
        }
    }

    /// What a drop of pages freed.
    public struct DroppedPages: Codable, Sendable {
        public var droppedBytes: Int
    }
}
