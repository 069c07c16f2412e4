import ArgumentParser
import EROFS
import Logging
import Metrics
import NIOCore
import PageCache
import PageShareServer
import Prometheus
import ServiceLifecycle
import UnixSignals

/// `pageshare serve`: the daemon. Attaches the images named on the command line to one shared page cache
/// and serves their files over HTTP/1.1 and HTTP/2 until SIGTERM or SIGINT, then shuts down gracefully.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve files of EROFS images over HTTP/1.1 and HTTP/2 from one shared page cache.")

    @Option(name: .customLong("image"), help: "Attach an image at start: ID=PATH[@DOMAIN] (domain: default).")
    var images: [ImageSpecification] = []
    @Option(help: "Fingerprints: auto (xattr if the image has ishare xattrs, else digest), xattr, digest, none.")
    var fingerprint: FingerprintChoice = .auto
    @Flag(help: "Verify each shared file against its fingerprint before other images may use its pages.")
    var verify = false

    @Option(name: .customLong("listen"), help: "TCP listener HOST:PORT (repeatable; default 127.0.0.1:8480).")
    var tcpListeners: [TCPAddress] = []
    @Option(name: .customLong("unix-socket"), help: "Also listen on a unix domain socket at this path (repeatable).")
    var unixSockets: [String] = []
    @Option(help: "Permission bits of the unix sockets, octal.") var socketMode: String = "0660"
    @Option(help: "PEM certificate chain: TCP listeners then speak TLS (ALPN h2, http/1.1).") var tlsCert: String?
    @Option(help: "PEM private key of --tls-cert.") var tlsKey: String?

    @Option(help: "Page data budget of the shared cache, e.g. 512MiB, 1GiB.") var cacheSize: ByteCount = .init(1 << 30)
    @Option(help: "Cache page size, 4KiB to 64KiB.") var pageSize: ByteCount = .init(4096)
    @Option(help: "Pages read ahead for sequential readers (0: off).") var readaheadPages: Int = 16

    @Option(help: "Most connections open at once.") var maxConnections: Int = 10_000
    @Option(help: "HTTP/2 concurrent streams per connection.") var maxStreams: Int = 128
    @Option(help: "Most ranges in one Range header; more is served whole (200).") var maxRanges: Int = 64
    @Option(help: "Seconds a connection may be idle before it is closed.") var idleTimeout: Int = 60
    @Option(help: "Seconds in-flight requests get to finish on shutdown.") var shutdownGrace: Int = 10
    @Option(help: "Event loop threads (default: one per core).") var threads: Int = System.coreCount
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel: String = "info"
    @Option(help: "Log format: logfmt or json.") var logFormat: String = "logfmt"

    func validate() throws {
        guard Logger.Level(rawValue: self.logLevel) != nil else { throw ValidationError("unknown --log-level") }
        guard StructuredLogHandler.Format(rawValue: self.logFormat) != nil else {
            throw ValidationError("--log-format must be logfmt or json")
        }
        guard UInt16(self.socketMode, radix: 8) != nil else { throw ValidationError("--socket-mode must be octal") }
        guard (self.tlsCert == nil) == (self.tlsKey == nil) else {
            throw ValidationError("--tls-cert and --tls-key go together")
        }
        guard self.maxRanges > 0, self.maxStreams > 0, self.maxConnections > 0, self.idleTimeout > 0,
            self.shutdownGrace >= 0, self.threads > 0, self.readaheadPages >= 0
        else { throw ValidationError("limits must be positive") }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: self.logLevel)!
        let format = StructuredLogHandler.Format(rawValue: self.logFormat)!
        LoggingSystem.bootstrap { label in StructuredLogHandler(label: label, format: format, logLevel: level) }
        let logger = Logger(label: "pageshare")
        let registry = PrometheusCollectorRegistry()
        var metricsFactory = PrometheusMetricsFactory(registry: registry)
        metricsFactory.durationHistogramBuckets["pageshare_http_request_duration_seconds"] =
            ServerMetrics.durationBuckets
        MetricsSystem.bootstrap(metricsFactory)
        let cache = try SharedPageCache(
            configuration: .init(
                budgetBytes: self.cacheSize.bytes, pageSize: self.pageSize.bytes, readaheadPages: self.readaheadPages))
        for specification in self.images {
            let image: Image
            do {
                image = try Image(path: specification.path)
            } catch {
                throw ServeFailure(description: "image \(specification.id) (\(specification.path)): \(error)")
            }
            let mode = self.fingerprint.mode(for: image)
            try cache.attach(
                image, id: specification.id, domain: try TrustDomain(specification.domain), mode: mode,
                verify: self.verify)
            logger.info(
                "attached",
                metadata: [
                    "image": "\(specification.id)", "path": "\(specification.path)",
                    "domain": "\(specification.domain)", "fingerprint": "\(mode)",
                ])
        }
        var listeners = (self.tcpListeners.isEmpty ? [TCPAddress(host: "127.0.0.1", port: 8480)] : self.tcpListeners)
            .map { ServerConfiguration.Listener.tcp(host: $0.host, port: $0.port) }
        let mode = UInt16(self.socketMode, radix: 8)!
        listeners += self.unixSockets.map { .unix(path: $0, mode: mode) }
        let configuration = ServerConfiguration(
            listeners: listeners,
            tls: self.tlsCert.map { ServerConfiguration.TLS(certificateChainPath: $0, privateKeyPath: self.tlsKey!) },
            maximumConnections: self.maxConnections, maximumConcurrentStreams: self.maxStreams,
            idleTimeout: .seconds(Int64(self.idleTimeout)), shutdownGracePeriod: .seconds(Int64(self.shutdownGrace)),
            threads: self.threads)
        let plane = DataPlane(
            cache: cache, limits: .init(maximumRanges: self.maxRanges), logger: logger, metricsFactory: metricsFactory,
            exposition: { MetricsExposition.render(registry) })
        let server = try PageShareServer(configuration: configuration, plane: plane)
        // Ordered start and graceful shutdown on SIGTERM/SIGINT: the data plane binds, digests are computed
        // beside it; on a signal the data plane drains (GOAWAY, in-flight responses finish) and hashing stops.
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: DataPlaneService(server: server, logger: logger)),
                    .init(service: DigestService(cache: cache, logger: logger), successTerminationBehavior: .ignore),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            throw ServeFailure(description: "\(error)")
        }
        logger.notice("stopped")
    }
}

/// A failure to start or run the daemon: printed as one line, exit status 1 (no usage text).
struct ServeFailure: Error, CustomStringConvertible {
    var description: String
}

/// The data plane as a service: listens until the group shuts down gracefully, then drains.
struct DataPlaneService: Service {
    let server: PageShareServer
    let logger: Logger

    func run() async throws {
        do {
            try await self.server.start()
        } catch {
            await self.server.shutdown()
            throw error
        }
        for address in self.server.boundAddresses {
            self.logger.notice("serving", metadata: ["address": "\(address)"])
        }
        try? await gracefulShutdown()
        self.logger.notice("shutting down: draining connections")
        await self.server.shutdown()
    }
}

/// Digests of the `digest`-mode images, computed in the background; stops on shutdown.
struct DigestService: Service {
    let cache: SharedPageCache
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await ServeCommand.precomputeDigests(cache: self.cache, logger: self.logger)
        }
    }
}

extension ServeCommand {
    /// Hashes the files of the images attached in `digest` mode in the background, logging progress every
    /// five seconds and the result; reads meanwhile hash a file on its first open.
    static func precomputeDigests(cache: SharedPageCache, logger: Logger) async {
        for id in cache.imageIDs {
            guard let before = try? cache.digestProgress(imageID: id), before.state == .idle else { continue }
            let started = ContinuousClock.now
            let reporter = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(5))
                    guard let progress = try? cache.digestProgress(imageID: id), progress.state == .hashing else {
                        continue
                    }
                    logger.info(
                        "hashing",
                        metadata: [
                            "image": "\(id)", "files": "\(progress.filesDone)/\(progress.filesTotal)",
                            "percent": "\(Int(progress.percent))",
                        ])
                }
            }
            try? await cache.precomputeDigests(imageID: id)
            reporter.cancel()
            guard let progress = try? cache.digestProgress(imageID: id), progress.state != .idle else { continue }
            let seconds = (ContinuousClock.now - started).components
            logger.notice(
                "digests",
                metadata: [
                    "image": "\(id)", "state": "\(progress.state)", "files": "\(progress.filesDone)",
                    "bytes": "\(progress.bytesDone)", "seconds": "\(seconds.seconds)",
                ])
        }
    }
}
