import ArgumentParser
import Foundation
import Logging
import Metrics
import NIOCore
import PageCache
import PageShareServer
import Prometheus
import ServiceLifecycle
import UnixSignals

/// `pageshare serve`: the daemon. Attaches the configured images and those saved in the state directory to
/// one shared page cache, serves their files and the admin API over HTTP/1.1 and HTTP/2 until SIGTERM or
/// SIGINT, then shuts down gracefully. SIGHUP reloads the tokens file.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve files of EROFS images over HTTP/1.1 and HTTP/2 from one shared page cache.",
        discussion: """
            Settings come from defaults, then the YAML file of --config, then PAGESHARE_* environment variables \
            (lists comma-separated), then flags. --print-config shows the result. Config keys, their variables:

            """
                + ServeSettings.keys.map { "  \($0.name) (\($0.environmentName)): \($0.help)" }.joined(separator: "\n")
                + "\n  images: [{id, path, domain, fingerprint, verify, devices, check}] (config file only; flags: --image)"
    )

    @Option(help: "YAML configuration file (keys as printed by --print-config).") var config: String?
    @Flag(help: "Print the effective configuration as YAML and exit.") var printConfig = false

    @Option(name: .customLong("image"), help: "Attach an image at start: ID=PATH[@DOMAIN] (domain: default).")
    var images: [ImageSpecification] = []
    @Option(help: "Fingerprints of --image images: auto (xattr if present, else digest), xattr, digest, none.")
    var fingerprint: String?
    @Flag(inversion: .prefixedNo, help: "Verify each shared file of --image images before other images use it.")
    var verify: Bool?

    @Option(name: .customLong("listen"), help: "TCP listener HOST:PORT (repeatable; default 127.0.0.1:8480).")
    var listen: [String] = []
    @Option(name: .customLong("unix-socket"), help: "Also listen on a unix domain socket (repeatable).")
    var unixSockets: [String] = []
    @Option(help: "Permission bits of the unix sockets, octal (default 0660).") var socketMode: String?
    @Option(help: "PEM certificate chain: TCP listeners then speak TLS (ALPN h2, http/1.1).") var tlsCert: String?
    @Option(help: "PEM private key of --tls-cert.") var tlsKey: String?

    @Option(help: "Page data budget of the shared cache, e.g. 512MiB (default 1GiB).") var cacheSize: String?
    @Option(help: "Cache page size, 4KiB to 64KiB (default 4KiB).") var pageSize: String?
    @Option(help: "Pages read ahead for sequential readers (0: off; default 16).") var readaheadPages: String?

    @Option(help: "Most connections open at once (default 10000).") var maxConnections: String?
    @Option(help: "HTTP/2 concurrent streams per connection (default 128).") var maxStreams: String?
    @Option(help: "Most ranges in one Range header; more is served whole (default 64).") var maxRanges: String?
    @Option(help: "Seconds a connection may be idle before it is closed (default 60).") var idleTimeout: String?
    @Option(help: "Seconds an HTTP/1.1 request head may take from its first byte (default 30).")
    var headerTimeout: String?
    @Option(help: "Seconds an HTTP/1.1 request body may take after its head (default 60).") var bodyTimeout: String?
    @Option(help: "Connections one client address may hold (default 0: no limit).")
    var maxConnectionsPerAddress: String?
    @Option(help: "Response bytes produced and not yet sent, daemon-wide (default 64MiB).") var sendBudget: String?
    @Option(help: "Seconds a response's writes may make no progress before it is cut (default 60).")
    var sendTimeout: String?
    @Option(help: "Seconds in-flight requests get to finish on shutdown (default 10).") var shutdownGrace: String?
    @Option(help: "Event loop threads (default: one per core).") var threads: String?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel: String?
    @Option(help: "Log format: logfmt or json.") var logFormat: String?

    @Option(help: "Tokens file (YAML, sha256 of each bearer token and its role); without it, loopback only.")
    var tokensFile: String?
    @Flag(inversion: .prefixedNo, help: "Serve /metrics without a token.") var publicMetrics: Bool?
    @Flag(inversion: .prefixedNo, help: "Export per-image series (one label value per attached image).")
    var metricsPerImage: Bool?
    @Option(help: "Failed authentications a client may make per minute before it gets 429 (default 10).")
    var authFailureLimit: String?
    @Flag(inversion: .prefixedNo, help: "Listen beyond loopback without a tokens file (everyone is an admin).")
    var allowUnauthenticatedRemote: Bool?
    @Option(help: "State directory: images attached and quotas set through the admin API survive restarts.")
    var stateDir: String?
    @Option(
        name: .customLong("image-dir"),
        help: "Attach every *.erofs or *.img file in this directory (subdirectories name domains) and watch it.")
    var imageDirectory: String?

    /// Defaults < config file < environment < flags.
    func settings(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ServeSettings {
        var settings = ServeSettings()
        if let path = self.config ?? environment["PAGESHARE_CONFIG"] {
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw SettingError("\(path): cannot read: \(error.localizedDescription)")
            }
            try settings.applyConfigFile(text, source: path)
        }
        try settings.applyEnvironment(environment)
        let flags: [(String, [String]?)] = [
            ("listen", self.listen.isEmpty ? nil : self.listen),
            ("unixSockets", self.unixSockets.isEmpty ? nil : self.unixSockets),
            ("socketMode", self.socketMode.map { [$0] }), ("tlsCert", self.tlsCert.map { [$0] }),
            ("tlsKey", self.tlsKey.map { [$0] }), ("cacheSize", self.cacheSize.map { [$0] }),
            ("pageSize", self.pageSize.map { [$0] }), ("readaheadPages", self.readaheadPages.map { [$0] }),
            ("maxConnections", self.maxConnections.map { [$0] }), ("maxStreams", self.maxStreams.map { [$0] }),
            ("maxRanges", self.maxRanges.map { [$0] }), ("idleTimeout", self.idleTimeout.map { [$0] }),
            ("headerTimeout", self.headerTimeout.map { [$0] }), ("bodyTimeout", self.bodyTimeout.map { [$0] }),
            ("maxConnectionsPerAddress", self.maxConnectionsPerAddress.map { [$0] }),
            ("sendBudget", self.sendBudget.map { [$0] }), ("sendTimeout", self.sendTimeout.map { [$0] }),
            ("shutdownGrace", self.shutdownGrace.map { [$0] }), ("threads", self.threads.map { [$0] }),
            ("logLevel", self.logLevel.map { [$0] }), ("logFormat", self.logFormat.map { [$0] }),
            ("tokensFile", self.tokensFile.map { [$0] }), ("publicMetrics", self.publicMetrics.map { ["\($0)"] }),
            ("authFailureLimit", self.authFailureLimit.map { [$0] }),
            ("metricsPerImage", self.metricsPerImage.map { ["\($0)"] }),
            ("allowUnauthenticatedRemote", self.allowUnauthenticatedRemote.map { ["\($0)"] }),
            ("stateDir", self.stateDir.map { [$0] }), ("imageDirectory", self.imageDirectory.map { [$0] }),
            ("fingerprint", self.fingerprint.map { [$0] }),
            ("verify", self.verify.map { ["\($0)"] }),
        ]
        for case (let name, let values?) in flags { try settings.applyFlag(name, values) }
        settings.images += self.images.map {
            ImageRecord(
                id: $0.id, path: $0.path, domain: $0.domain, fingerprint: settings.fingerprint,
                verify: settings.verify)
        }
        try settings.validate()
        return settings
    }

    func run() async throws {
        let settings: ServeSettings
        do {
            settings = try self.settings()
        } catch {
            throw CommandFailure(description: "configuration: \(error)")
        }
        if self.printConfig {
            print(try settings.yaml(), terminator: "")
            return
        }
        let logLevel = LogLevelControl(settings.logLevel)
        LoggingSystem.bootstrap { label in
            StructuredLogHandler(label: label, format: settings.logFormat, level: logLevel)
        }
        let logger = Logger(label: "pageshare")
        let registry = PrometheusCollectorRegistry()
        var metricsFactory = PrometheusMetricsFactory(registry: registry)
        metricsFactory.durationHistogramBuckets["pageshare_http_request_duration_seconds"] =
            ServerMetrics.durationBuckets
        MetricsSystem.bootstrap(metricsFactory)
        do {
            let cache = try SharedPageCache(
                configuration: .init(
                    budgetBytes: settings.cacheSize, pageSize: settings.pageSize,
                    readaheadPages: settings.readaheadPages))
            let access =
                try settings.tokensFile.map {
                    try AccessPolicy(
                        tokensPath: $0, publicMetrics: settings.publicMetrics,
                        maximumFailures: settings.authFailureLimit)
                }
                ?? .open()
            if access.isOpen {
                logger.notice(
                    "no tokens file: every client that can connect is an admin; listening on loopback and unix sockets only"
                )
            }
            let catalog = ImageCatalog(
                cache: cache, store: try settings.stateDir.map { try StateStore(directory: $0) }, logger: logger)
            var failures = try await catalog.start(configured: settings.images, required: settings.requiredImages)
            if let directory = settings.imageDirectory {
                await catalog.watchImageDirectory(directory)
                failures += await catalog.list().filter { $0.origin == .directory && $0.state == .failed }
                    .map { ($0.id, $0.reason ?? "") }
            }
            if !failures.isEmpty {
                logger.error(
                    "started without some images (listed as failed)",
                    metadata: ["images": "\(failures.map { "\($0.id): \($0.reason)" }.joined(separator: "; "))"])
            }
            let plane = DataPlane(
                cache: cache, limits: .init(maximumRanges: settings.maxRanges), access: access, catalog: catalog,
                logger: logger, metricsFactory: metricsFactory, exposition: { MetricsExposition.render(registry) },
                perImageMetrics: settings.metricsPerImage, ready: false,
                sendBudget: SendBudget(
                    poolBytes: settings.sendBudget, connections: settings.maxConnections,
                    chunkBytes: DataPlane.Limits().chunkBytes, sendTimeout: .seconds(Int64(settings.sendTimeout))))
            let server = try PageShareServer(configuration: settings.serverConfiguration, plane: plane)
            // Ordered start and graceful shutdown on SIGTERM/SIGINT: the data plane binds and then reports
            // ready; on a signal it drains (GOAWAY, in-flight responses finish) and background hashing stops.
            let notifier = ServiceManagerNotifier()
            let group = ServiceGroup(
                configuration: .init(
                    services: [
                        .init(
                            service: DataPlaneService(server: server, plane: plane, logger: logger, notifier: notifier)
                        ),
                        .init(
                            service: ControlPlaneService(
                                catalog: catalog, access: access, logger: logger, logLevel: logLevel,
                                settings: settings, reload: { try self.settings() }, notifier: notifier),
                            successTerminationBehavior: .ignore),
                    ],
                    gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        } catch {
            throw CommandFailure(description: "\(error)")
        }
        logger.notice("stopped")
    }
}

extension ServeSettings {
    /// Listening sockets passed by systemd socket activation (`LISTEN_PID` is this process, `LISTEN_FDS`
    /// descriptors from 3 on).
    static func activatedSockets(environment: [String: String] = ProcessInfo.processInfo.environment) -> [Int32] {
        guard let pid = environment["LISTEN_PID"].flatMap(Int32.init), pid == getpid(),
            let count = environment["LISTEN_FDS"].flatMap(Int32.init), count > 0
        else { return [] }
        return Array(3..<(3 + count))
    }

    /// The listeners and limits of the data plane: sockets from the service manager, the configured unix
    /// sockets, and the TCP addresses (the default 127.0.0.1:8480 only without activated sockets).
    var serverConfiguration: ServerConfiguration {
        let activated = Self.activatedSockets()
        let tcp = activated.isEmpty || self.listenConfigured ? self.listen : []
        return ServerConfiguration(
            listeners: activated.map { .inherited(descriptor: $0) } + tcp.map { .tcp(host: $0.host, port: $0.port) }
                + self.unixSockets.map { .unix(path: $0, mode: self.socketMode) },
            tls: self.tlsCert.map { ServerConfiguration.TLS(certificateChainPath: $0, privateKeyPath: self.tlsKey!) },
            maximumConnections: self.maxConnections, maximumConcurrentStreams: self.maxStreams,
            idleTimeout: .seconds(Int64(self.idleTimeout)), shutdownGracePeriod: .seconds(Int64(self.shutdownGrace)),
            threads: self.threads, allowUnauthenticatedRemote: self.allowUnauthenticatedRemote,
            headerTimeout: .seconds(Int64(self.headerTimeout)), bodyTimeout: .seconds(Int64(self.bodyTimeout)),
            maximumConnectionsPerAddress: self.maxConnectionsPerAddress)
    }
}
