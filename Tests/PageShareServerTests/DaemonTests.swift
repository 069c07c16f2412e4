import EROFSTestSupport
import Foundation
import Logging
import NIOCore
import PageCache
import Testing

@testable import PageShareServer

/// ``PageShareDaemon`` in-process: the whole daemon from a ``DaemonConfiguration`` (the same assembly
/// `pageshare serve` runs), on an ephemeral port.
@Suite("The daemon in-process")
struct DaemonTests {
    @Test("configured, directory and admin-API images, on port 0, with the library's defaults otherwise")
    func assembledInProcess() async throws {
        let directory = try TemporaryDirectory("daemon")
        defer { directory.remove() }
        let configured = try TestImage(options: []) { try TestTree.write($0 + "/file", Array("configured".utf8)) }
        defer { configured.remove() }
        let dropped = try TestImage(options: []) { try TestTree.write($0 + "/file", Array("dropped".utf8)) }
        defer { dropped.remove() }
        try TestTree.make(directory.path + "/images/team")
        try TestTree.write(directory.path + "/images/team/dropped.erofs", try dropped.bytes())
        try TestTree.make(directory.path + "/state")

        var configuration = DaemonConfiguration()
        configuration.server.listeners = [.tcp(host: "127.0.0.1", port: 0)]
        configuration.cache.budgetBytes = 16 << 20
        configuration.images = [ImageRecord(id: "configured", path: configured.path)]
        configuration.imageDirectory = directory.path + "/images"
        configuration.stateDirectory = directory.path + "/state"
        var logger = Logger(label: "daemon-test")
        logger.logLevel = .critical
        let daemon = try await PageShareDaemon(configuration: configuration, logger: logger)
        try await daemon.start()
        let port = try #require(daemon.server.boundAddresses.first?.port)
        func get(_ path: String) async throws -> String {
            String(decoding: try await Self.curl(["-s", "-m", "10", "http://127.0.0.1:\(port)\(path)"]), as: UTF8.self)
        }
        #expect(try await get("/readyz") == "ready\n")
        #expect(try await get("/v1/images/configured/files/file") == "configured")
        #expect(try await get("/v1/images/dropped/files/file") == "dropped")
        #expect(try await get("/v1/admin/images/dropped").contains(#""domain":"team""#))
        let attach = try await Self.curl([
            "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}", "-H", "content-type: application/json",
            "--data-binary", #"{"id": "api", "path": "\#(configured.path)"}"#,
            "http://127.0.0.1:\(port)/v1/admin/images",
        ])
        #expect(String(decoding: attach, as: UTF8.self) == "201")
        #expect(try await get("/v1/images/api/files/file") == "configured")
        let saved = try String(contentsOfFile: directory.path + "/state/state.json", encoding: .utf8)
        #expect(saved.contains(#""id" : "api""#), "written to the state directory: \(saved)")
        #expect(daemon.configuration.server.maximumConnections == ServerConfiguration().maximumConnections)
        #expect(daemon.failures.isEmpty)
        await daemon.shutdown()
        #expect((try? await get("/readyz")) == "", "nothing listens after shutdown")
    }

    @Test(
        "sharing: chunk over HTTP: two versions served exact, ranges too; chunk savings in the admin API; a domain sharing whole files beside it"
    )
    func sharingByChunk() async throws {
        let version1 = PseudoRandomBytes.make(700_000, seed: 5)
        let version2 = PseudoRandomBytes.make(333, seed: 6) + version1[..<400_000] + version1[400_100...]
        let old = try TestImage(options: []) { try TestTree.write($0 + "/lib.so", version1) }
        defer { old.remove() }
        let new = try TestImage(options: ["-zlz4hc"]) { try TestTree.write($0 + "/lib.so", version2) }
        defer { new.remove() }
        var configuration = DaemonConfiguration()
        configuration.server.listeners = [.tcp(host: "127.0.0.1", port: 0)]
        configuration.cache.budgetBytes = 16 << 20
        configuration.cache.sharing = .chunk
        configuration.cache.domainSharing = [try TrustDomain("legacy"): .file]
        configuration.images = [
            ImageRecord(id: "old", path: old.path, domain: "app"),
            ImageRecord(id: "new", path: new.path, domain: "app"),
            ImageRecord(id: "legacy-old", path: old.path, domain: "legacy"),
            ImageRecord(id: "legacy-new", path: new.path, domain: "legacy"),
        ]
        let state = try TemporaryDirectory("daemon-state")
        defer { state.remove() }
        configuration.stateDirectory = state.path
        var logger = Logger(label: "daemon-test")
        logger.logLevel = .critical
        let daemon = try await PageShareDaemon(configuration: configuration, logger: logger)
        try await daemon.start()
        let port = try #require(daemon.server.boundAddresses.first?.port)
        let base = "http://127.0.0.1:\(port)"
        #expect(try await Self.curl(["-s", "-m", "10", "\(base)/v1/images/old/files/lib.so"]) == version1)
        #expect(try await Self.curl(["-s", "-m", "10", "\(base)/v1/images/new/files/lib.so"]) == version2)
        let range = try await Self.curl(["-s", "-m", "10", "-r", "399000-520000", "\(base)/v1/images/new/files/lib.so"])
        #expect(range == Array(version2[399_000...520_000]))
        let http2 = try await Self.curl([
            "-s", "-m", "10", "--http2-prior-knowledge", "-r", "123-", "\(base)/v1/images/old/files/lib.so",
        ])
        #expect(http2 == Array(version1[123...]))
        let cache = String(decoding: try await Self.curl(["-s", "-m", "10", "\(base)/v1/admin/cache"]), as: UTF8.self)
        #expect(cache.contains(#""sharing":"chunk""#), "\(cache)")
        let domain = try JSONDecoder().decode(
            AdminBodies.DomainStatus.self,
            from: Data(try await Self.curl(["-s", "-m", "10", "\(base)/v1/admin/domains/app"])))
        #expect(domain.residentBytes < version1.count + version2.count / 10, "the second version costs little")
        #expect(domain.chunkSavedBytes > version2.count * 8 / 10 && domain.savedBytes == 0)
        #expect(domain.sharing == "chunk")
        for (id, bytes) in [("legacy-old", version1), ("legacy-new", version2)] {
            #expect(try await Self.curl(["-s", "-m", "10", "\(base)/v1/images/\(id)/files/lib.so"]) == bytes)
        }
        let legacy = try JSONDecoder().decode(
            AdminBodies.DomainStatus.self,
            from: Data(try await Self.curl(["-s", "-m", "10", "\(base)/v1/admin/domains/legacy"])))
        #expect(legacy.sharing == "file" && legacy.chunkSavedBytes == 0)
        #expect(legacy.residentBytes == version1.count + version2.count, "whole files only: nothing shared below them")
        let maps = try FileManager.default.contentsOfDirectory(atPath: state.path + "/chunk-maps")
        #expect(maps.count == 2 && maps.allSatisfy { $0.hasSuffix(".chunks") }, "kept in the state directory: \(maps)")
        await daemon.shutdown()
    }

    /// curl's output, run on a thread of its own: a blocking wait on a concurrency thread could starve the
    /// daemon's own tasks (the catalog actor, the admin API) when the test runner keeps the others busy.
    static func curl(_ arguments: [String]) async throws -> [UInt8] {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try run(which("curl")!, arguments).output }) }.start()
        }
    }
}
