import EROFSTestSupport
import Foundation
import Glibc
import PageCache
import Testing

/// A connection the server closes after its last response must not lose that response to a reset: closing
/// a socket whose client is still sending (bytes unread) makes the kernel reset the connection, and a reset
/// discards what is still queued for the client. The server shuts its sending side and reads on instead
/// (lingering close, RFC 9112 §9.6).
@Suite("Lingering close")
struct LingeringCloseTests {
    static let body = PseudoRandomBytes.make(2 << 20, seed: 9112)

    static func withServer(_ run: (ServerFixture) async throws -> Void) async throws {
        let image = try TestImage(options: []) { try TestTree.write($0 + "/big", Self.body) }
        defer { image.remove() }
        let server = try await ServerFixture.start([("img", try image.open(), "default", .none)])
        try await run(server)
        await server.stop()
    }

    /// Sends `request` followed by `trailing` bytes the server has no reason to read, waits, then reads to the
    /// end: the bytes received, and the errno of a read that failed (0: the stream ended cleanly).
    static func exchange(_ request: String, trailing: Int, port: Int) throws -> (bytes: [UInt8], error: Int32) {
        let socket = try SlowClient.connectLoopback(port: port)
        defer { close(socket) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array(request.utf8) + [UInt8](repeating: UInt8(ascii: "X"), count: trailing)
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count <= 0 { break }
            sent += count
        }
        // Meanwhile the server answers and would close: its response waits in the socket buffers.
        usleep(300_000)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(socket, &buffer, buffer.count, 0)
            if count < 0 { return (received, errno) }
            if count == 0 { return (received, 0) }
            received += buffer[0..<count]
        }
    }

    @Test("a Connection: close response of 2 MiB reaches a client that sent more after its request, whole")
    func closeAfterResponse() async throws {
        try await Self.withServer { server in
            let (bytes, error) = try Self.exchange(
                "GET /v1/images/img/files/big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", trailing: 64 * 1024,
                port: server.port)
            #expect(error == 0, "the read failed: errno \(error) after \(bytes.count) bytes")
            let text = String(decoding: bytes.prefix(200), as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(text)")
            #expect(bytes.count > Self.body.count && Array(bytes.suffix(Self.body.count)) == Self.body)
        }
    }

    @Test("a malformed request's 400 and a CONNECT's 405 reach a client still sending, and the stream ends")
    func refusalReachesClient() async throws {
        try await Self.withServer { server in
            for (request, status) in [
                ("GET /\u{1} HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 Bad Request"),
                ("CONNECT localhost:80 HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"),
            ] {
                let (bytes, error) = try Self.exchange(request, trailing: 256 * 1024, port: server.port)
                #expect(error == 0, "the read failed: errno \(error) after \(bytes.count) bytes")
                #expect(String(decoding: bytes, as: UTF8.self).hasPrefix(status), "\(bytes.count) bytes")
            }
        }
    }
}
