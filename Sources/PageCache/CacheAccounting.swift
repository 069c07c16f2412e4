import Synchronization

/// Counters of one fingerprint domain, updated with relaxed atomics on the read path.
final class DomainCounters: Sendable {
    let residentBytes = Atomic<Int>(0)
    let logicalReadBytes = Atomic<Int>(0)
    let hits = Atomic<Int>(0)
    let misses = Atomic<Int>(0)
    let fills = Atomic<Int>(0)
    let evictions = Atomic<Int>(0)
    let verifyFailures = Atomic<Int>(0)
    /// Most resident bytes the domain may hold (`Int.max`: no quota); read and set through ``quota``.
    private let quotaBytes = Atomic<Int>(Int.max)
    /// The domain's number in chunk keys: chunks of two domains never have the same key.
    let chunkScope: UInt32
    /// What the domain shares by.
    let sharing: SharingUnit

    init(chunkScope: UInt32, sharing: SharingUnit) {
        self.chunkScope = chunkScope
        self.sharing = sharing
    }

    /// The quota in bytes, nil for none.
    var quota: Int? {
        get {
            let bytes = self.quotaBytes.load(ordering: .relaxed)
            return bytes == Int.max ? nil : bytes
        }
        set { self.quotaBytes.store(newValue ?? Int.max, ordering: .relaxed) }
    }

    enum Counter { case residentBytes, logicalReadBytes, hits, misses, fills, evictions, verifyFailures }

    func add(_ counter: Counter, _ value: Int) {
        switch counter {
        case .residentBytes: self.residentBytes.wrappingAdd(value, ordering: .relaxed)
        case .logicalReadBytes: self.logicalReadBytes.wrappingAdd(value, ordering: .relaxed)
        case .hits: self.hits.wrappingAdd(value, ordering: .relaxed)
        case .misses: self.misses.wrappingAdd(value, ordering: .relaxed)
        case .fills: self.fills.wrappingAdd(value, ordering: .relaxed)
        case .evictions: self.evictions.wrappingAdd(value, ordering: .relaxed)
        case .verifyFailures: self.verifyFailures.wrappingAdd(value, ordering: .relaxed)
        }
    }
}

/// A snapshot of one domain's accounting.
public struct DomainStatistics: Sendable, Hashable {
    /// Bytes of page or chunk data held for the domain's files: its unique content in the cache.
    public var residentBytes: Int
    /// Bytes served to readers.
    public var logicalReadBytes: Int
    public var hits: Int
    public var misses: Int
    /// Pages read from an image and published.
    public var fills: Int
    public var evictions: Int
    /// Saved by whole-file identity: Σ over shared files of (sharers − 1) × resident bytes, what caches
    /// without sharing would have held more.
    public var savedBytes: Int
    /// Saved by chunks, on top of that: Σ over resident chunks of (references − 1) × length, references
    /// counted once per shared file (a chunk twice in one file counts twice). Zero when sharing by file.
    public var chunkSavedBytes: Int
    /// Files of `verify` images whose bytes did not match their fingerprint (cached privately).
    public var verifyFailures: Int
}

/// Counters of one attached image's reads (what its readers asked for; the pages themselves belong to the
/// domain's shared content).
final class ImageCounters: Sendable {
    let logicalReadBytes = Atomic<Int>(0)
    let hits = Atomic<Int>(0)
    let misses = Atomic<Int>(0)
    let fills = Atomic<Int>(0)
}

/// A snapshot of one attached image's accounting.
public struct ImageStatistics: Sendable, Hashable {
    /// Bytes resident for the files this image has read (shared pages count for every sharer).
    public var residentBytes: Int
    /// Bytes served to this image's readers.
    public var logicalReadBytes: Int
    public var hits: Int
    public var misses: Int
    /// Pages this image's reads brought in.
    public var fills: Int
}
