import EROFS
import EROFSTestSupport
import Foundation
import Glibc
import NIOCore
import PageCache
import Testing

@testable import PageShareServer

/// Clients that hold connections by sending slowly or not at all: head and body deadlines that trickled
/// bytes cannot stretch, shedding at the connection limit, a limit per address.
@Suite("Slow and greedy clients", .serialized)
struct SlowlorisTests {
    static func withServer(
        maximumConnections: Int = 1000, perAddress: Int = 0, headerTimeout: TimeAmount = .seconds(1),
        _ body: (ServerFixture) async throws -> Void
    ) async throws {
        let image = try TestImage(options: []) { try TestTree.write($0 + "/motd", Array("hello\n".utf8)) }
        defer { image.remove() }
        let server = try await ServerFixture.start(
            [("img", try image.open(), "default", .none)], maximumConnections: maximumConnections,
            idleTimeout: .seconds(60), headerTimeout: headerTimeout, bodyTimeout: .seconds(1),
            maximumConnectionsPerAddress: perAddress)
        try await body(server)
        await server.stop()
    }

    /// Whether the server closed `socket` (a read returns 0 or fails) within `limit`.
    static func closed(_ socket: Int32, within limit: Double) -> Bool {
        var timeout = timeval(tv_sec: Int(limit), tv_usec: Int((limit - Double(Int(limit))) * 1_000_000))
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var byte: UInt8 = 0
        while true {
            let count = recv(socket, &byte, 1, 0)
            if count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR) { return true }
            if count < 0 { return false }
        }
    }

    static func send(_ socket: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    @Test("a head trickled one byte at a time is cut at the header timeout, though each byte came in time")
    func headDeadline() async throws {
        try await Self.withServer { server in
            let socket = try SlowClient.connectLoopback(port: server.port)
            defer { close(socket) }
            let started = ContinuousClock.now
            var cut = false
            for byte in "GET /v1/images/img/files/motd HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaa".utf8 {
                Self.send(socket, String(UnicodeScalar(byte)))
                if Self.closed(socket, within: 0.2) {
                    cut = true
                    break
                }
            }
            let elapsed = ContinuousClock.now - started
            #expect(cut && elapsed < .seconds(3), "closed after \(elapsed)")
        }
    }

    @Test(
        "an HTTP/2 connection in use outlives the header timeout (the HTTP/1.1 deadlines stop for it)",
        .enabled(if: H2Client.isAvailable, "needs /usr/bin/python3 with python3-h2"))
    func http2OutlivesHeaderTimeout() async throws {
        try await Self.withServer { server in
            // Header timeout 1 s: requests for 3.5 s on one connection.
            let result = try await H2Client.run(port: server.port, ["longlived", "/v1/images/img/files/motd", "3.5"])
            let statuses = try #require(result["statuses"] as? [Int])
            #expect(statuses.count >= 5 && statuses.allSatisfy { $0 == 200 }, "\(statuses)")
            #expect(result["closed"] as? Bool == false && result["goaway_last_stream"] is NSNull)
        }
    }

    @Test("a body that stops coming is cut at the body timeout; a connection idle between requests is not")
    func bodyDeadline() async throws {
        try await Self.withServer { server in
            let socket = try SlowClient.connectLoopback(port: server.port)
            defer { close(socket) }
            Self.send(socket, "POST /v1/admin/images HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"id\"")
            #expect(Self.closed(socket, within: 3))
            let idle = try SlowClient.connectLoopback(port: server.port)
            defer { close(idle) }
            Self.send(idle, "GET /v1/images/img/files/motd HTTP/1.1\r\nHost: x\r\n\r\n")
            var buffer = [UInt8](repeating: 0, count: 4096)
            #expect(recv(idle, &buffer, buffer.count, 0) > 0)
            #expect(!Self.closed(idle, within: 2), "between requests the idle timeout (60 s) applies")
        }
    }

    @Test("at the connection limit, connections that never completed a request are shed for new ones")
    func shedding() async throws {
        // A long header timeout: what frees a stalled connection here is the shedding, not its deadline.
        try await Self.withServer(maximumConnections: 4, headerTimeout: .seconds(30)) { server in
            // Four connections that send nothing (a slowloris that has not started yet).
            let stalled = try (0..<4).map { _ in try SlowClient.connectLoopback(port: server.port) }
            defer { stalled.forEach { close($0) } }
            try await Task.sleep(for: .milliseconds(200))
            let served = try await server.get("/v1/images/img/files/motd")
            #expect(served.status == 200 && served.bodyText == "hello\n", "a new client is served")
            #expect(stalled.contains { Self.closed($0, within: 0.5) }, "one stalled connection made room")
            // Four connections that each completed a request are kept: the newcomer is refused instead.
            let busy = try (0..<4).map { _ in try SlowClient.connectLoopback(port: server.port) }
            defer { busy.forEach { close($0) } }
            for socket in busy {
                Self.send(socket, "GET /v1/images/img/files/motd HTTP/1.1\r\nHost: x\r\n\r\n")
                var buffer = [UInt8](repeating: 0, count: 4096)
                _ = recv(socket, &buffer, buffer.count, 0)
            }
            try await Task.sleep(for: .milliseconds(200))
            let late = try SlowClient.connectLoopback(port: server.port)
            defer { close(late) }
            #expect(Self.closed(late, within: 1), "refused at the limit")
            #expect(busy.allSatisfy { !Self.closed($0, within: 0.1) }, "serving connections are kept")
        }
    }

    @Test("a limit per address refuses the connection over it")
    func perAddressLimit() async throws {
        // A long header timeout: the two connections say nothing, and on a loaded machine the wait below can
        // outlast a short one.
        try await Self.withServer(perAddress: 2, headerTimeout: .seconds(30)) { server in
            let first = try SlowClient.connectLoopback(port: server.port)
            let second = try SlowClient.connectLoopback(port: server.port)
            defer {
                close(first)
                close(second)
            }
            try await Task.sleep(for: .milliseconds(100))
            let third = try SlowClient.connectLoopback(port: server.port)
            defer { close(third) }
            #expect(Self.closed(third, within: 1))
            #expect(!Self.closed(first, within: 0.1) && !Self.closed(second, within: 0.1))
        }
    }
}
