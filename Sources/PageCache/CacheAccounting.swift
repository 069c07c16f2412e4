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
    /// Bytes of page data held for the domain's files.
    public var residentBytes: Int
    /// Bytes served to readers.
    public var logicalReadBytes: Int
    public var hits: Int
    public var misses: Int
    /// Pages read from an image and published.
    public var fills: Int
    public var evictions: Int
    /// Σ over shared files of (sharers − 1) × resident bytes: what separate caches would have held more.
    public var savedBytes: Int
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
