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
        // About 4 s of download (32 KiB every 50 ms): time enough for the second connection even when the
        // whole suite loads the machine (at 20 ms the download once ended first in a full run).
        async let slow = SlowClient.get(
            port: server.port, target: "/v1/images/img/files/big.bin", pause: .milliseconds(50)
        ) { continuation.yield() }
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

    @Test("a client that stops reading is closed after the idle timeout; a slow one that reads is not")
    func stalledReader() async throws {
        let image = try TestImage(options: []) { try ServedTree.write(at: $0) }
        defer { image.remove() }
        let server = try await ServerFixture.start(
            [("img", try image.open(), "default", .none)], idleTimeout: .seconds(1))
        let socket = try SlowClient.stalledReader(port: server.port, target: "/v1/images/img/files/big.bin")
        defer { close(socket) }
        let started = ContinuousClock.now
        // The server's side of the connection, seen through /metrics (over h2, so as not to count itself):
        // the client's kernel cannot tell, its window is full.
        func openHTTP1() async throws -> Int? {
            let metrics = try await server.get("/metrics", over: .http2).bodyText
            let line = metrics.split(separator: "\n").first {
                $0.hasPrefix(#"pageshare_http_open_connections{protocol="http/1.1"}"#)
            }
            return line.flatMap { Int(Double($0.split(separator: " ").last ?? "") ?? -1) }
        }
        #expect(try await openHTTP1() == 1, "the stalled download is open")
        var closedAfter: Duration?
        while closedAfter == nil && ContinuousClock.now - started < .seconds(10) {
            try await Task.sleep(for: .milliseconds(100))
            if try await openHTTP1() == 0 { closedAfter = ContinuousClock.now - started }
        }
        let closed = try #require(closedAfter, "still open after 10 s")
        #expect(closed >= .milliseconds(900) && closed < .seconds(5))
        await server.stop()
        // A slow reader that keeps reading is not idle: a download that outlasts the timeout, and the kernel's
        // socket buffers (a few MiB on loopback, so the file is larger), completes. What the server sees as
        // progress is a write completing, and the kernel takes more only once about half its send buffer has
        // drained, so the reader must drain that (~2 MiB) within the timeout: ~12 MB/s here.
        let huge = TestTree.pattern(24 << 20, seed: 9)
        let large = try TestImage(options: []) { try TestTree.write($0 + "/huge.bin", huge) }
        defer { large.remove() }
        let second = try await ServerFixture.start(
            [("img", try large.open(), "default", .none)], idleTimeout: .seconds(1))
        let downloadStarted = ContinuousClock.now
        let slow = try await SlowClient.get(
            port: second.port, target: "/v1/images/img/files/huge.bin", chunk: 256 * 1024, pause: .milliseconds(20),
            receiveBuffer: 256 * 1024, started: {})
        #expect(ContinuousClock.now - downloadStarted > .milliseconds(1500), "the download outlasted the timeout")
        #expect(slow.status == 200 && slow.body.count == huge.count)
        let same = slow.body == huge
        #expect(same)
        await second.stop()
    }
}
