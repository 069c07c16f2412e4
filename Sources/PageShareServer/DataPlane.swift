import EROFS
import Logging
import Metrics
import NIOCore
import PageCache
import Synchronization

/// What every connection shares: the cache (which holds the attached images), the access policy, the admin
/// API, the limits, and the logger. Safe from every event loop.
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
        /// Largest request body accepted (admin API JSON); more is refused with 413.
        public var maximumBodyBytes: Int

        public init(
            maximumRanges: Int = 64, chunkBytes: Int = 64 * 1024, defaultListingLimit: Int = 1000,
            maximumListingLimit: Int = 10000, maximumBodyBytes: Int = 64 * 1024
        ) {
            self.maximumBodyBytes = maximumBodyBytes
            self.maximumRanges = maximumRanges
            self.chunkBytes = chunkBytes
            self.defaultListingLimit = defaultListingLimit
            self.maximumListingLimit = maximumListingLimit
        }
    }

    public let cache: SharedPageCache
    public let limits: Limits
    public let access: AccessPolicy
    /// The admin API (nil: `/v1/admin` does not exist).
    let admin: AdminAPI?
    private let ready: Atomic<Bool>
    let logger: Logger
    let metrics: ServerMetrics
    let metricsFactory: any MetricsFactory
    /// The Prometheus text exposition served at `/metrics` (nil: no `/metrics`).
    let exposition: (@Sendable () -> [UInt8])?
    /// Export per-image series (`pageshare_image_*{image}`): one label value per attached image.
    let perImageMetrics: Bool
    /// Whether resident pages are lent to NIO or copied, by the cache's page size.
    let pageWrites: PageWrites
    /// The bound on response bytes produced and not yet sent, shared by every connection.
    public let sendBudget: SendBudget

    /// - Parameters:
    ///   - metricsFactory: where the data plane's and the cache's series go.
    ///   - exposition: renders `/metrics`; the cache's series are published just before it is called.
    ///   - catalog: serves the admin API when given; its cache must be `cache`.
    ///   - perImageMetrics: also export series labelled by image.
    ///   - ready: whether `/readyz` answers 200 from the start (else after ``markReady()``).
    ///   - sendBudget: the bound on unsent response bytes (default: the daemon's, ``DaemonConfiguration``).
    public init(
        cache: SharedPageCache, limits: Limits = Limits(), access: AccessPolicy = .open(), catalog: ImageCatalog? = nil,
        logger: Logger, metricsFactory: any MetricsFactory = MetricsSystem.factory,
        exposition: (@Sendable () -> [UInt8])? = nil, perImageMetrics: Bool = false, ready: Bool = true,
        sendBudget: SendBudget? = nil
    ) {
        self.sendBudget = sendBudget ?? DaemonConfiguration.defaultSendBudget(chunkBytes: limits.chunkBytes)
        self.perImageMetrics = perImageMetrics
        self.cache = cache
        self.access = access
        self.admin = catalog.map { AdminAPI(catalog: $0) }
        self.ready = Atomic(ready)
        self.limits = limits
        self.logger = logger
        self.metricsFactory = metricsFactory
        self.metrics = ServerMetrics(factory: metricsFactory)
        self.exposition = exposition
        self.pageWrites = PageWrites(pageSize: cache.configuration.pageSize)
    }

    /// `/readyz` answers 200 from now on (state restored, listeners up).
    public func markReady() { self.ready.store(true, ordering: .relaxed) }

    var isReady: Bool { self.ready.load(ordering: .relaxed) }
}
