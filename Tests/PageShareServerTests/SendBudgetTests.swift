import EROFSTestSupport
import Foundation
import NIOCore
import PageCache
import Testing

@testable import PageShareServer

#if canImport(Glibc)
import Glibc
#endif

/// The bound on response bytes produced and not yet sent (``SendBudget``, ``SendAllowance``) and the send
/// timeout, against clients that stop reading: zero HTTP/2 windows, stalled HTTP/1.1 sockets.
@Suite("Unsent bytes and the send timeout", .serialized)
struct SendBudgetTests {
    static let big = "/v1/images/img/files/big.bin"

    /// 24 MiB: more than the kernel's socket buffers take on loopback (4 MiB send, the reader's 4 KiB), so
    /// that a reader that stops reading leaves the server with bytes to send.
    static let huge: [UInt8] = {
        let block = (0..<65536).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24 << 20)
        for index in 0..<384 {
            bytes += withUnsafeBytes(of: UInt64(index).littleEndian) { Array($0) }
            bytes += block.dropFirst(8)
        }
        return bytes
    }()

    static func withServer(
        _ budget: SendBudget? = nil, huge: Bool = false, _ body: (ServerFixture) async throws -> Void
    ) async throws {
        let image = try TestImage(options: []) { root in
            try ServedTree.write(at: root)
            if huge { try TestTree.write(root + "/huge.bin", Self.huge) }
        }
        defer { image.remove() }
        let server = try await ServerFixture.start(
            [("img", try image.open(), "default", .none)], sendBudget: budget)
        try await body(server)
        await server.stop()
    }

    static func budget(pool: Int = 64 << 20, connections: Int = 10_000, timeout: TimeAmount) -> SendBudget {
        SendBudget(poolBytes: pool, connections: connections, chunkBytes: 64 * 1024, sendTimeout: timeout)
    }

    /// `pageshare_http_unsent_bytes` and `pageshare_http_send_timeouts_total` from `/metrics`.
    static func unsentAndTimeouts(_ server: ServerFixture) async throws -> (unsent: Double, timeouts: Double) {
        let text = try await server.get("/metrics").bodyText
        func value(_ name: String) -> Double {
            let line = text.split(separator: "\n").first { $0.hasPrefix(name + " ") }
            return line.flatMap { Double($0.split(separator: " ").last!) } ?? -1
        }
        return (value("pageshare_http_unsent_bytes"), value("pageshare_http_send_timeouts_total"))
    }

    @Test(
        "streams that cannot be sent hold the connection's floor, not a chunk each; every head goes out, every body completes once read",
        .enabled(if: H2Client.isAvailable, "needs /usr/bin/python3 with python3-h2"))
    func zeroWindowStreamsHoldTheFloor() async throws {
        let budget = Self.budget(timeout: .seconds(60))
        try await Self.withServer(budget) { server in
            let streams = 24
            let result = try await H2Client.run(port: server.port, ["stalled", Self.big, "\(streams)"])
            #expect(result["heads_while_stalled"] as? Int == streams, "every stream is answered (200) at once")
            let unsent = try #require(result["unsent_while_stalled"] as? Double)
            let floor = Double(budget.floorBytes)
            // Before the budget: a 64 KiB chunk per stream, 1.5 MiB here (and 2.5 GiB for 300 x 128).
            #expect(unsent > 0 && unsent <= floor, "\(Int(unsent)) bytes produced for streams that cannot send")
            let bodies = try #require(result["bodies"] as? [[String: Any]])
            let big = ServedTree.content("big.bin")!
            #expect(bodies.count == streams)
            for body in bodies {
                #expect(body["status"] as? Int == 200 && body["ended"] as? Bool == true)
                #expect(body["sha256"] as? String == sha256Hex(big), "\(body["length"] ?? 0) bytes")
            }
            #expect(try await Self.unsentAndTimeouts(server).unsent == 0, "everything given back")
        }
    }

    @Test(
        "a connection whose writes make no progress is closed after the send timeout, PINGs or not",
        .enabled(if: H2Client.isAvailable, "needs /usr/bin/python3 with python3-h2"))
    func stalledConnectionIsClosed() async throws {
        try await Self.withServer(Self.budget(timeout: .seconds(1))) { server in
            let result = try await H2Client.run(port: server.port, ["sendtimeout", Self.big])
            #expect(result["status"] as? Int == 200)
            let closed = try #require(result["closed_after"] as? Double, "the connection stayed open 10 s")
            #expect(closed >= 0.9 && closed < 4, "closed after \(closed) s")
            let after = try await Self.unsentAndTimeouts(server)
            #expect(after.timeouts == 1 && after.unsent == 0)
        }
    }

    @Test(
        "a stream whose window stays shut is reset (CANCEL) after the send timeout; the connection and its other streams go on",
        .enabled(if: H2Client.isAvailable, "needs /usr/bin/python3 with python3-h2"))
    func stalledStreamIsReset() async throws {
        try await Self.withServer(Self.budget(timeout: .seconds(1))) { server in
            let result = try await H2Client.run(port: server.port, ["stalledstream", Self.big])
            #expect(result["stuck_reset"] as? Int == 8, "RST_STREAM(CANCEL) for the stuck stream")
            let after = try #require(result["reset_after"] as? Double)
            #expect(after >= 0.9 && after < 4, "reset after \(after) s")
            #expect(result["closed"] as? Bool == false)
            let moving = try #require(result["moving"] as? [String: Any])
            #expect(moving["status"] as? Int == 200 && moving["ended"] as? Bool == true)
            #expect(moving["sha256"] as? String == sha256Hex(ServedTree.content("big.bin")!))
        }
    }

    @Test("an HTTP/1.1 reader that stops is closed after the send timeout; one that pauses for less is served whole")
    func stalledHTTP1ReaderIsClosed() async throws {
        try await Self.withServer(Self.budget(timeout: .seconds(3)), huge: true) { server in
            let big = Self.huge
            let target = "/v1/images/img/files/huge.bin"
            // On a thread of its own: the pauses are the test, and a loaded cooperative pool would stretch them.
            let (whole, cut) = try await Self.onThread {
                let stalled = try Self.closingRequest(port: server.port, target: target)
                let paused = try Self.closingRequest(port: server.port, target: target)
                let started = Date()
                Thread.sleep(forTimeInterval: 0.4)
                let whole = try Self.readToEnd(paused)
                // Past the timeout and the check after it (a quarter of the timeout) before the stalled reader reads.
                Thread.sleep(until: started + 5)
                return (whole, try Self.readToEnd(stalled))
            }
            #expect(whole.count > big.count && whole.suffix(big.count) == big[...], "\(whole.count) bytes")
            #expect(cut.count < big.count, "the stalled reader got \(cut.count) bytes before the close")
            #expect(try await Self.unsentAndTimeouts(server).timeouts == 1)
        }
    }

    /// Runs blocking client code on a thread of its own and hands back what it returns.
    static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    @Test(
        "with the pool held by clients that do not read, another client is still served whole, and the bound holds",
        .enabled(if: H2Client.isAvailable, "needs /usr/bin/python3 with python3-h2"))
    func normalClientServedWhilePoolIsHeld() async throws {
        let budget = Self.budget(pool: 256 * 1024, connections: 16, timeout: .seconds(60))
        try await Self.withServer(budget) { server in
            let stalled = try (0..<8).map { _ in try SlowClient.stalledReader(port: server.port, target: Self.big) }
            defer { stalled.forEach { close($0) } }
            async let zeroWindows = H2Client.run(port: server.port, ["stalled", Self.big, "16"])
            try await Task.sleep(for: .milliseconds(500))
            let big = ServedTree.content("big.bin")!
            for transport in [ServerFixture.Transport.http1, .http2] {
                let response = try await server.get(Self.big, over: transport)
                #expect(response.status == 200 && response.body == big, "\(transport): \(response.body.count) bytes")
            }
            let held = try await Self.unsentAndTimeouts(server).unsent
            // The pool, plus a floor for each connection; the stalled HTTP/1.1 readers hold theirs.
            let bound = Double(budget.poolBytes + 12 * budget.floorBytes)
            #expect(held > 0 && held <= bound, "\(Int(held)) unsent bytes held")
            _ = try await zeroWindows
        }
    }

    /// A GET for `target` with `Connection: close` on a socket with a small receive buffer, nothing read yet.
    static func closingRequest(port: Int, target: String) throws -> Int32 {
        let socket = try SlowClient.connectLoopback(port: port, receiveBuffer: 4096)
        let request = Array("GET \(target) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
        guard send(socket, request, request.count, 0) == request.count else {
            close(socket)
            throw POSIXError(.EIO)
        }
        return socket
    }

    /// Reads from `socket` until the server closes it (or 10 s pass), then closes it.
    static func readToEnd(_ socket: Int32) throws -> [UInt8] {
        defer { close(socket) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(socket, &buffer, buffer.count, 0)
            if count <= 0 { break }
            out += buffer[0..<count]
        }
        return out
    }
}
