import Logging
import Metrics
import PageCache

/// The daemon, assembled from a ``DaemonConfiguration``: the shared cache, the access policy, the image
/// catalog (configured, saved and directory images attached), the data plane and the server. `pageshare
/// serve` runs one under its signal handling; tests run one in-process on port 0.
public final class PageShareDaemon: Sendable {
    public let configuration: DaemonConfiguration
    public let cache: SharedPageCache
    public let access: AccessPolicy
    public let catalog: ImageCatalog
    public let plane: DataPlane
    public let server: DataPlaneServer
    /// Images that could not be attached at start (listed as `failed`), with the reasons.
    public let failures: [(id: String, reason: String)]

    /// Builds everything and attaches the images; nothing listens until ``start()``.
    /// - Parameters:
    ///   - metricsFactory: where the series go.
    ///   - exposition: renders `/metrics` (nil: no `/metrics`).
    /// - Throws: a tokens file, a state directory or a required image that cannot be used; a TLS
    ///   certificate that cannot be loaded.
    public init(
        configuration: DaemonConfiguration, logger: Logger, metricsFactory: any MetricsFactory = MetricsSystem.factory,
        exposition: (@Sendable () -> [UInt8])? = nil
    ) async throws {
        self.configuration = configuration
        // The state directory first: its checks name what is wrong with it, and the chunk maps live inside.
        let store = try configuration.stateDirectory.map { try StateStore(directory: $0) }
        var cacheConfiguration = configuration.cache
        if cacheConfiguration.chunkMapDirectory == nil, let state = configuration.stateDirectory {
            // Chunk maps survive restarts beside the attached-image state.
            cacheConfiguration.chunkMapDirectory = state + "/chunk-maps"
        }
        self.cache = try SharedPageCache(configuration: cacheConfiguration)
        self.access =
            try configuration.tokensFile.map {
                try AccessPolicy(
                    tokensPath: $0, publicMetrics: configuration.publicMetrics,
                    maximumFailures: configuration.authFailureLimit)
            } ?? .open()
        if self.access.isOpen {
            logger.notice(
                "no tokens file: every client that can connect is an admin; listening on loopback and unix sockets only"
            )
        }
        self.catalog = ImageCatalog(
            cache: self.cache, store: store, logger: logger)
        var failures = try await self.catalog.start(
            configured: configuration.images, required: configuration.requiredImages)
        if let directory = configuration.imageDirectory {
            await self.catalog.watchImageDirectory(directory)
            failures += await self.catalog.list().filter { $0.origin == .directory && $0.state == .failed }
                .map { ($0.id, $0.reason ?? "") }
        }
        self.failures = failures
        if !failures.isEmpty {
            logger.error(
                "started without some images (listed as failed)",
                metadata: ["images": "\(failures.map { "\($0.id): \($0.reason)" }.joined(separator: "; "))"])
        }
        self.plane = DataPlane(
            cache: self.cache, limits: configuration.limits, access: self.access, catalog: self.catalog,
            logger: logger, metricsFactory: metricsFactory, exposition: exposition,
            perImageMetrics: configuration.metricsPerImage, ready: false, sendBudget: configuration.sendBudget)
        self.server = try DataPlaneServer(configuration: configuration.server, plane: self.plane)
    }

    /// Binds every listener, then `/readyz` answers 200.
    public func start() async throws {
        do {
            try await self.server.start()
        } catch {
            await self.server.shutdown()
            throw error
        }
        self.plane.markReady()
    }

    /// Drains the connections (GOAWAY, in-flight responses finish within the grace period) and stops the
    /// background work.
    public func shutdown() async {
        await self.server.shutdown()
        await self.catalog.stop()
    }
}
