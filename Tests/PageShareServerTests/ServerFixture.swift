import EROFS
import EROFSTestSupport
import Foundation
import Logging
import NIOCore
import PageCache
import Prometheus
import Testing

@testable import PageShareServer

/// A real ``DataPlaneServer`` on an ephemeral TCP port and a unix socket, with images attached, driven by
/// curl (HTTP/1.1, HTTP/2 with prior knowledge, TLS with ALPN).
final class ServerFixture: Sendable {
    let server: DataPlaneServer
    let cache: SharedPageCache
    /// The control plane behind `/v1/admin` (the images given to ``start`` are attached to the cache directly).
    let catalog: ImageCatalog
    let port: Int
    let socketPath: String
    let directory: TemporaryDirectory
    let tlsCertificate: String?
    /// The registry behind `/metrics`.
    let registry: PrometheusCollectorRegistry

    /// Starts a server with `images` (id, image, domain, mode) attached.
    static func start(
        _ images: [(String, Image, String, FingerprintMode)], tls: Bool = false, maximumRanges: Int = 64,
        budgetBytes: Int = 64 << 20, pageSize: Int = 4096, shutdownGrace: TimeAmount = .seconds(10),
        maximumConnections: Int = 1000,
        idleTimeout: TimeAmount = .seconds(60), access: AccessPolicy = .open(), stateDirectory: String? = nil,
        perImageMetrics: Bool = false, headerTimeout: TimeAmount = .seconds(30), bodyTimeout: TimeAmount = .seconds(60),
        maximumConnectionsPerAddress: Int = 0, sendBudget: SendBudget? = nil
    ) async throws -> ServerFixture {
        let directory = try TemporaryDirectory("server")
        let cache = try SharedPageCache(configuration: .init(budgetBytes: budgetBytes, pageSize: pageSize))
        for (id, image, domain, mode) in images {
            try cache.attach(image, id: id, domain: try TrustDomain(domain), mode: mode)
        }
        var tlsConfiguration: ServerConfiguration.TLS? = nil
        var certificate: String? = nil
        if tls {
            let cert = directory.path + "/cert.pem"
            let key = directory.path + "/key.pem"
            let made = try run(
                which("openssl")!,
                [
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days",
                    "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert,
                ])
            try #require(made.status == 0, "openssl: \(made.error)")
            tlsConfiguration = .init(certificateChainPath: cert, privateKeyPath: key)
            certificate = cert
        }
        let socketPath = directory.path + "/pageshare.sock"
        let configuration = ServerConfiguration(
            listeners: [.tcp(host: "127.0.0.1", port: 0), .unix(path: socketPath, mode: 0o600)], tls: tlsConfiguration,
            maximumConnections: maximumConnections, idleTimeout: idleTimeout, shutdownGracePeriod: shutdownGrace,
            threads: 2, headerTimeout: headerTimeout, bodyTimeout: bodyTimeout,
            maximumConnectionsPerAddress: maximumConnectionsPerAddress)
        var logger = Logger(label: "pageshare-test")
        logger.logLevel = .critical
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["pageshare_http_request_duration_seconds"] = ServerMetrics.durationBuckets
        let catalog = ImageCatalog(
            cache: cache, store: try stateDirectory.map { try StateStore(directory: $0) }, logger: logger)
        try await catalog.start(configured: [])
        let plane = DataPlane(
            cache: cache, limits: .init(maximumRanges: maximumRanges), access: access, catalog: catalog,
            logger: logger, metricsFactory: factory, exposition: { MetricsExposition.render(registry) },
            perImageMetrics: perImageMetrics, sendBudget: sendBudget)
        let server = try DataPlaneServer(configuration: configuration, plane: plane)
        try await server.start()
        let port = try #require(server.boundAddresses.first?.port)
        return ServerFixture(
            server: server, cache: cache, catalog: catalog, port: port, socketPath: socketPath, directory: directory,
            tlsCertificate: certificate, registry: registry)
    }

    private init(
        server: DataPlaneServer, cache: SharedPageCache, catalog: ImageCatalog, port: Int, socketPath: String,
        directory: TemporaryDirectory,
        tlsCertificate: String?, registry: PrometheusCollectorRegistry
    ) {
        self.registry = registry
        self.server = server
        self.cache = cache
        self.catalog = catalog
        self.port = port
        self.socketPath = socketPath
        self.directory = directory
        self.tlsCertificate = tlsCertificate
    }

    func stop() async {
        await self.catalog.stop()
        await self.server.shutdown()
        self.directory.remove()
    }

    /// How curl reaches the server.
    enum Transport: CaseIterable, CustomStringConvertible {
        case http1, http2, unixHTTP1, unixHTTP2

        var description: String {
            switch self {
            case .http1: "HTTP/1.1"
            case .http2: "h2c"
            case .unixHTTP1: "unix HTTP/1.1"
            case .unixHTTP2: "unix h2c"
            }
        }
    }

    /// One response as curl saw it.
    struct Response: Sendable {
        var status: Int
        var httpVersion: String
        /// Lower-cased names; the last value of a repeated header.
        var headers: [String: String]
        var body: [UInt8]
        var curlExit: Int32

        func header(_ name: String) -> String? { self.headers[name.lowercased()] }
        var bodyText: String { String(decoding: self.body, as: UTF8.self) }
        var problemType: String? {
            (try? JSONSerialization.jsonObject(with: Data(self.body)) as? [String: Any])?["type"] as? String
        }
    }

    /// Sends `method` to `target` with a JSON `body` and a bearer `token` (each optional).
    func send(
        _ method: String, _ target: String, json body: String? = nil, token: String? = nil,
        over transport: Transport = .http1
    ) async throws -> Response {
        var headers: [String: String] = [:]
        if let token { headers["authorization"] = "Bearer \(token)" }
        var arguments = ["-X", method]
        if let body {
            headers["content-type"] = "application/json"
            arguments += ["--data-binary", body]
        }
        return try await self.get(target, over: transport, headers: headers, arguments: arguments)
    }

    /// Requests `target` (a path starting with `/`) with extra curl `arguments`. curl runs on a thread of
    /// its own: blocking a thread of Swift's cooperative pool would starve the server's fills in this process.
    func get(
        _ target: String, over transport: Transport = .http1, headers: [String: String] = [:],
        arguments: [String] = []
    ) async throws -> Response {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(
                    with: Result {
                        try self.getBlocking(target, over: transport, headers: headers, arguments: arguments)
                    })
            }.start()
        }
    }

    private func getBlocking(
        _ target: String, over transport: Transport, headers: [String: String], arguments: [String]
    ) throws -> Response {
        let id = UUID().uuidString
        let bodyFile = self.directory.path + "/body-" + id
        let headerFile = self.directory.path + "/headers-" + id
        defer {
            unlink(bodyFile)
            unlink(headerFile)
        }
        var curl = ["-s", "--path-as-is", "-o", bodyFile, "-D", headerFile, "-w", "%{http_code} %{http_version}"]
        let scheme = self.tlsCertificate == nil ? "http" : "https"
        switch transport {
        case .http1: curl += ["--http1.1", "\(scheme)://127.0.0.1:\(self.port)\(target)"]
        case .http2:
            curl += [
                self.tlsCertificate == nil ? "--http2-prior-knowledge" : "--http2",
                "\(scheme)://127.0.0.1:\(self.port)\(target)",
            ]
        case .unixHTTP1: curl += ["--http1.1", "--unix-socket", self.socketPath, "http://localhost\(target)"]
        case .unixHTTP2:
            curl += ["--http2-prior-knowledge", "--unix-socket", self.socketPath, "http://localhost\(target)"]
        }
        if let certificate = self.tlsCertificate { curl += ["--cacert", certificate] }
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { curl += ["-H", "\(name): \(value)"] }
        curl += arguments
        let result = try run(which("curl")!, curl)
        let written = String(decoding: result.output, as: UTF8.self).split(separator: " ")
        var parsed: [String: String] = [:]
        let headerText = (try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? ""
        for line in headerText.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            parsed[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let body = (try? Data(contentsOf: URL(fileURLWithPath: bodyFile))).map { Array($0) } ?? []
        return Response(
            status: Int(written.first ?? "") ?? 0, httpVersion: written.count > 1 ? String(written[1]) : "",
            headers: parsed, body: body, curlExit: result.status)
    }
}

/// A small tree for serving tests: sizes around page boundaries, a few MiB of incompressible data, names
/// that need percent-encoding, symlinks and nested directories.
enum ServedTree {
    static let files: [(String, [UInt8])] = [
        ("empty", []),
        ("one", [0x41]),
        ("page-minus-one", TestTree.pattern(4095, seed: 1)),
        ("page", TestTree.pattern(4096, seed: 2)),
        ("page-plus-one", TestTree.pattern(4097, seed: 3)),
        ("dir/nested/medium.bin", TestTree.pattern(300_000, seed: 4)),
        ("big.bin", TestTree.pattern(2_500_000, seed: 5)),
        ("text/repeated.txt", Array(String(repeating: "PageShare serves ranges. ", count: 20_000).utf8)),
        ("names/with space & percent%.txt", Array("spaces\n".utf8)),
        ("names/ünïcödé.txt", Array("unicode\n".utf8)),
    ]

    /// The content of `path`, following the test tree's symlinks.
    static func content(_ path: String) -> [UInt8]? {
        let aliases = ["link-to-big": "big.bin", "dir/up-link": "page"]
        let resolved = aliases[path] ?? path
        return Self.files.first(where: { $0.0 == resolved })?.1
    }

    /// Writes the tree under `root`.
    static func write(at root: String) throws {
        for (path, bytes) in Self.files { try TestTree.write(root + "/" + path, bytes, makingParent: true) }
        try TestTree.symlink("big.bin", root + "/link-to-big")
        try TestTree.symlink("../page", root + "/dir/up-link")
        for index in 0..<120 {
            try TestTree.write(root + "/many/entry-\(1000 + index)", [UInt8(index)], makingParent: true)
        }
    }

    /// `path` percent-encoded for a URL path (every byte outside unreserved characters and `/`).
    static func encode(_ path: String) -> String {
        var out = ""
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"), UInt8(ascii: "/"):
                out.append(Character(UnicodeScalar(byte)))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}
