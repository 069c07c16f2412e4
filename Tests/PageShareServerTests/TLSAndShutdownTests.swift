import EROFS
import EROFSTestSupport
import Foundation
import NIOCore
import PageCache
import Testing

@testable import PageShareServer

@Suite("TLS, limits and shutdown", .serialized)
struct TLSAndShutdownTests {
    @Test(
        "TLS negotiates h2 or http/1.1 by ALPN and serves the same bytes",
        .enabled(if: which("openssl") != nil, "needs openssl to make a certificate"))
    func tlsWithALPN() async throws {
        let image = try TestImage(options: ["-zlz4"]) { try ServedTree.write(at: $0) }
        defer { image.remove() }
        let server = try await ServerFixture.start([("img", try image.open(), "default", .digest)], tls: true)
        let big = ServedTree.content("big.bin")!
        let h2 = try await server.get("/v1/images/img/files/big.bin", over: .http2)
        #expect(h2.status == 200 && h2.httpVersion == "2")
        let sameH2 = h2.body == big
        #expect(sameH2)
        let h1 = try await server.get("/v1/images/img/files/big.bin", over: .http1, headers: ["Range": "bytes=10-19"])
        #expect(h1.status == 206 && h1.httpVersion == "1.1" && h1.body == Array(big[10...19]))
        let unix = try await server.get("/v1/images/img/files/one", over: .unixHTTP2)
        #expect(unix.status == 200 && unix.body == [0x41], "the unix socket stays cleartext")
        await server.stop()
    }

    @Test("shutdown lets an in-flight download finish, then refuses new connections")
    func gracefulShutdown() async throws {
        let image = try TestImage(options: []) { try ServedTree.write(at: $0) }
        defer { image.remove() }
        let server = try await ServerFixture.start([("img", try image.open(), "default", .none)])
        let big = ServedTree.content("big.bin")!
        let (headArrived, continuation) = AsyncStream<Void>.makeStream()
        async let download = SlowClient.get(port: server.port, target: "/v1/images/img/files/big.bin") {
            continuation.yield()
        }
        for await _ in headArrived { break }
        await server.server.shutdown()
        let response = try await download
        let same = response.body == big
        #expect(response.status == 200 && same, "the download in flight finished whole")
        let after = try await server.get("/v1/images/img/files/one")
        #expect(after.status == 0 && after.curlExit != 0, "no new connection after shutdown")
        server.directory.remove()
    }

    @Test("connections past the limit are closed; the others keep working")
    func connectionLimit() async throws {
        let image = try TestImage(options: []) { try ServedTree.write(at: $0) }
        defer { image.remove() }
        let server = try await ServerFixture.start(
            [("img", try image.open(), "default", .none)], maximumConnections: 1)
        let (headArrived, continuation) = AsyncStream<Void>.makeStream()
        async let slow = SlowClient.get(port: server.port, target: "/v1/images/img/files/big.bin") {
            continuation.yield()
        }
        for await _ in headArrived { break }
        let refused = try await server.get("/v1/images/img/files/one")
        #expect(refused.status == 0 && refused.curlExit != 0, "the second connection is closed at once")
        let finished = try await slow
        #expect(finished.status == 200 && finished.body.count == 2_500_000)
        try await Task.sleep(for: .milliseconds(200))
        let later = try await server.get("/v1/images/img/files/one")
        #expect(later.status == 200 && later.body == [0x41], "the slot is free again")
        await server.stop()
    }

    @Test("a connection that never sends anything is closed after the idle timeout", arguments: [false, true])
    func silentConnection(tls: Bool) async throws {
        let image = try TestImage(options: []) { try ServedTree.write(at: $0) }
        defer { image.remove() }
        let server = try await ServerFixture.start(
            [("img", try image.open(), "default", .none)], tls: tls, idleTimeout: .seconds(1))
        let lifetime = try await SlowClient.silentConnectionLifetime(port: server.port, limit: .seconds(10))
        let closed = try #require(lifetime, "still open after 10 s")
        #expect(closed >= .milliseconds(900) && closed < .seconds(5))
        await server.stop()
    }
}
