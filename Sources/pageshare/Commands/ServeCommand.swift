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
                + "\n  images: [{id, path, domain, fingerprint, verify, devices, check, required}] (config file only; flags: --image)"
    )

    @Option(help: "YAML configuration file (keys as printed by --print-config).") var config: String?
    @Flag(help: "Print the effective configuration as YAML and exit.") var printConfig = false

    @Option(name: .customLong("image"), help: "Attach an image at start: ID=PATH[@DOMAIN] (domain: default).")
    var images: [ImageSpecification] = []
    @Option(help: ServeSettings.help("fingerprint")) var fingerprint: String?
    @Flag(inversion: .prefixedNo, help: ServeSettings.help("verify")) var verify: Bool?

    // One property per configuration key, named like it (the key table, ServeSettings.keys, parses the
    // values and gives the help; ArgumentParser needs a property to parse a flag into).
    @Option(name: .customLong("listen"), help: ServeSettings.help("listen", "repeatable"))
    var listen: [String] = []
    @Option(name: .customLong("unix-socket"), help: ServeSettings.help("unixSockets", "repeatable"))
    var unixSockets: [String] = []
    @Option(help: ServeSettings.help("socketMode")) var socketMode: String?
    @Option(help: ServeSettings.help("tlsCert")) var tlsCert: String?
    @Option(help: ServeSettings.help("tlsKey")) var tlsKey: String?
    @Option(help: ServeSettings.help("cacheSize")) var cacheSize: String?
    @Option(help: ServeSettings.help("pageSize")) var pageSize: String?
    @Option(help: ServeSettings.help("readaheadPages")) var readaheadPages: String?
    @Option(help: ServeSettings.help("sharing")) var sharing: String?
    @Option(name: .customLong("domain-sharing"), help: ServeSettings.help("domainSharing", "repeatable"))
    var domainSharing: [String] = []
    @Option(help: ServeSettings.help("chunkSize")) var chunkSize: String?
    @Option(help: ServeSettings.help("maxConnections")) var maxConnections: String?
    @Option(help: ServeSettings.help("maxStreams")) var maxStreams: String?
    @Option(help: ServeSettings.help("maxRanges")) var maxRanges: String?
    @Option(help: ServeSettings.help("idleTimeout")) var idleTimeout: String?
    @Option(help: ServeSettings.help("headerTimeout")) var headerTimeout: String?
    @Option(help: ServeSettings.help("bodyTimeout")) var bodyTimeout: String?
    @Option(help: ServeSettings.help("maxConnectionsPerAddress")) var maxConnectionsPerAddress: String?
    @Option(help: ServeSettings.help("sendBudget")) var sendBudget: String?
    @Option(help: ServeSettings.help("sendTimeout")) var sendTimeout: String?
    @Option(help: ServeSettings.help("shutdownGrace")) var shutdownGrace: String?
    @Option(help: ServeSettings.help("threads")) var threads: String?
    @Option(help: ServeSettings.help("logLevel")) var logLevel: String?
    @Option(help: ServeSettings.help("logFormat")) var logFormat: String?
    @Option(help: ServeSettings.help("tokensFile")) var tokensFile: String?
    @Flag(inversion: .prefixedNo, help: ServeSettings.help("publicMetrics")) var publicMetrics: Bool?
    @Flag(inversion: .prefixedNo, help: ServeSettings.help("metricsPerImage")) var metricsPerImage: Bool?
    @Option(help: ServeSettings.help("authFailureLimit")) var authFailureLimit: String?
    @Flag(inversion: .prefixedNo, help: ServeSettings.help("allowUnauthenticatedRemote"))
    var allowUnauthenticatedRemote: Bool?
    @Option(help: ServeSettings.help("stateDir")) var stateDir: String?
    @Option(name: .customLong("image-dir"), help: ServeSettings.help("imageDirectory")) var imageDirectory: String?

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
        for key in ServeSettings.keys {
            if let values = self.flagValues(key.name) { try settings.applyFlag(key, values) }
        }
        settings.daemon.images += self.images.map {
            ImageRecord(
                id: $0.id, path: $0.path, domain: $0.domain, fingerprint: settings.fingerprint,
                verify: settings.verify)
        }
        try settings.validate()
        return settings
    }

    /// The values given on the command line for the key `name`, from the property named like it; nil when
    /// the flag was not given.
    private func flagValues(_ name: String) -> [String]? {
        for child in Mirror(reflecting: self).children where child.label == "_" + name {
            switch child.value {
            case let option as Option<String?>: return option.wrappedValue.map { [$0] }
            case let option as Option<[String]>: return option.wrappedValue.isEmpty ? nil : option.wrappedValue
            case let flag as Flag<Bool?>: return flag.wrappedValue.map { [String($0)] }
            default: return nil
            }
        }
        return nil
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
            let daemon = try await PageShareDaemon(
                configuration: settings.daemonConfiguration, logger: logger, metricsFactory: metricsFactory,
                exposition: { MetricsExposition.render(registry) })
            // Ordered start and graceful shutdown on SIGTERM/SIGINT: the data plane binds and then reports
            // ready; on a signal it drains (GOAWAY, in-flight responses finish) and background hashing stops.
            let notifier = ServiceManagerNotifier()
            let group = ServiceGroup(
                configuration: .init(
                    services: [
                        .init(service: DataPlaneService(daemon: daemon, logger: logger, notifier: notifier)),
                        .init(
                            service: ControlPlaneService(
                                catalog: daemon.catalog, access: daemon.access, logger: logger, logLevel: logLevel,
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

    /// The daemon these settings describe: the listeners from socket activation, the unix sockets and the
    /// TCP addresses (the default 127.0.0.1:8480 only without activated sockets), with TLS if configured.
    var daemonConfiguration: DaemonConfiguration {
        let activated = Self.activatedSockets()
        let tcp = activated.isEmpty || self.listenConfigured ? self.listen : []
        var configuration = self.daemon
        configuration.server.listeners =
            activated.map { .inherited(descriptor: $0) } + tcp.map { .tcp(host: $0.host, port: $0.port) }
            + self.unixSockets.map { .unix(path: $0, mode: self.socketMode) }
        configuration.server.tls = self.tlsCert.map {
            ServerConfiguration.TLS(certificateChainPath: $0, privateKeyPath: self.tlsKey!)
        }
        return configuration
    }
}
