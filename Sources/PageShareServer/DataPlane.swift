import EROFS
import Logging
import Metrics
import PageCache

/// What every data-plane connection shares: the cache (which holds the attached images), the limits, and
/// the logger. Immutable; safe from every event loop.
public final class DataPlane: Sendable {
    /// Limits applied to each request.
    public struct Limits: Sendable {
        /// Most ranges one `Range` header may ask for; more is served as the whole file (200).
        public var maximumRanges: Int
        /// Bytes read from the cache and written per body chunk.
        public var chunkBytes: Int
        /// Entries a directory listing page holds by default, and at most.
        public var defaultListingLimit: Int
        public var maximumListingLimit: Int

        public init(
            maximumRanges: Int = 64, chunkBytes: Int = 64 * 1024, defaultListingLimit: Int = 1000,
            maximumListingLimit: Int = 10000
        ) {
            self.maximumRanges = maximumRanges
            self.chunkBytes = chunkBytes
            self.defaultListingLimit = defaultListingLimit
            self.maximumListingLimit = maximumListingLimit
        }
    }

    public let cache: SharedPageCache
    public let limits: Limits
    let logger: Logger
    let metrics: ServerMetrics
    let metricsFactory: any MetricsFactory
    /// The Prometheus text exposition served at `/metrics` (nil: no `/metrics`).
    let exposition: (@Sendable () -> [UInt8])?

    /// - Parameters:
    ///   - metricsFactory: where the data plane's and the cache's series go.
    ///   - exposition: renders `/metrics`; the cache's series are published just before it is called.
    public init(
        cache: SharedPageCache, limits: Limits = Limits(), logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory, exposition: (@Sendable () -> [UInt8])? = nil
    ) {
        self.cache = cache
        self.limits = limits
        self.logger = logger
        self.metricsFactory = metricsFactory
        self.metrics = ServerMetrics(factory: metricsFactory)
        self.exposition = exposition
    }
}
