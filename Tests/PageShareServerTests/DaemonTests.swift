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

    /// curl's output, run on a thread of its own: a blocking wait on a concurrency thread could starve the
    /// daemon's own tasks (the catalog actor, the admin API) when the test runner keeps the others busy.
    static func curl(_ arguments: [String]) async throws -> [UInt8] {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try run(which("curl")!, arguments).output }) }.start()
        }
    }
}
