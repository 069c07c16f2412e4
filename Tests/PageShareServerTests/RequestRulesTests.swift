import EROFS
import EROFSTestSupport
import Foundation
import Glibc
import PageCache
import Testing

@testable import PageShareServer

/// HTTP/1.1 request rules (RFC 9112 §3.2, RFC 9110 §10.1.1) and repeated fields, over a raw socket.
@Suite("HTTP/1.1 request rules", .serialized)
struct RequestRulesTests {
    /// Sends `request` on a new connection and reads until the server closes it (or 3 s pass).
    static func exchange(_ request: String, port: Int) throws -> String {
        let socket = try SlowClient.connectLoopback(port: port)
        defer { close(socket) }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array(request.utf8)
        _ = bytes.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, 0) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(socket, &buffer, buffer.count, 0)
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// The status line (`"\r\n"` is one Character, so split on the string).
    static func status(_ response: String) -> String { response.components(separatedBy: "\r\n").first ?? "" }

    static func withServer(_ body: (ServerFixture) async throws -> Void) async throws {
        let image = try TestImage(options: []) { try TestTree.write($0 + "/motd", Array("hello\n".utf8)) }
        defer { image.remove() }
        let server = try await ServerFixture.start([("img", try image.open(), "default", .none)])
        try await body(server)
        await server.stop()
    }

    @Test("Host: none or two is 400 (HTTP/1.1); HTTP/1.0 needs none")
    func hostRules() async throws {
        try await Self.withServer { server in
            let missing = try Self.exchange(
                "GET /v1/images/img/files/motd HTTP/1.1\r\nConnection: close\r\n\r\n", port: server.port)
            #expect(Self.status(missing) == "HTTP/1.1 400 Bad Request" && missing.contains("Host field"), "\(missing)")
            let two = try Self.exchange(
                "GET /v1/images/img/files/motd HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
                port: server.port)
            #expect(Self.status(two) == "HTTP/1.1 400 Bad Request" && two.contains("more than one Host"), "\(two)")
            let old = try Self.exchange("GET /v1/images/img/files/motd HTTP/1.0\r\n\r\n", port: server.port)
            #expect(Self.status(old).hasSuffix("200 OK") && old.hasSuffix("hello\n"), "\(old)")
        }
    }

    @Test("an absolute-form target is served")
    func absoluteForm() async throws {
        try await Self.withServer { server in
            let response = try Self.exchange(
                "GET http://127.0.0.1:\(server.port)/v1/images/img/files/motd HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    + "Connection: close\r\n\r\n", port: server.port)
            #expect(Self.status(response) == "HTTP/1.1 200 OK" && response.hasSuffix("hello\n"), "\(response)")
        }
    }

    @Test("Expect: 100-continue gets 100 Continue at once; another expectation 417")
    func expectContinue() async throws {
        try await Self.withServer { server in
            let socket = try SlowClient.connectLoopback(port: server.port)
            defer { close(socket) }
            var timeout = timeval(tv_sec: 3, tv_usec: 0)
            setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let head = Array(
                ("POST /v1/admin/images HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + "Expect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n").utf8)
            _ = head.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, 0) }
            // Before any body byte is sent, the interim response arrives.
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(socket, &buffer, buffer.count, 0)
            let interim = String(decoding: buffer[0..<max(count, 0)], as: UTF8.self)
            #expect(interim.hasPrefix("HTTP/1.1 100 Continue\r\n"), "\(interim)")
            let other = try Self.exchange(
                "POST /v1/admin/images HTTP/1.1\r\nHost: x\r\nExpect: something\r\nContent-Length: 2\r\n"
                    + "Connection: close\r\n\r\n{}", port: server.port)
            #expect(Self.status(other) == "HTTP/1.1 417 Expectation Failed", "\(other)")
        }
    }

    @Test("a path through a file is 404, trailing / or /. included; two Range fields are 400")
    func pathsAndRepeatedRanges() async throws {
        try await Self.withServer { server in
            #expect(try await server.get("/v1/images/img/files/motd").status == 200)
            for target in ["motd/", "motd/.", "motd/%2E", "motd/x/.."] {
                let response = try await server.get("/v1/images/img/files/" + target)
                #expect(response.status == 404, "\(target): \(response.status)")
            }
            #expect(try await server.get("/v1/images/img/dirs/").status == 200)
            let twice = try Self.exchange(
                "GET /v1/images/img/files/motd HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\nRange: bytes=1-1\r\n"
                    + "Connection: close\r\n\r\n", port: server.port)
            #expect(
                Self.status(twice) == "HTTP/1.1 400 Bad Request" && twice.contains("more than one Range"), "\(twice)")
        }
    }

    @Test("parser-level 400s and the CONNECT 405 carry a problem+json body, and the connection closes")
    func protocolErrorsHaveBodies() async throws {
        try await Self.withServer { server in
            for request in [
                "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", "GET /\u{1} HTTP/1.1\r\nHost: x\r\n\r\n",
            ] {
                let response = try Self.exchange(request, port: server.port)
                #expect(Self.status(response) == "HTTP/1.1 400 Bad Request", "\(response)")
                #expect(
                    response.contains("urn:pageshare:problem:bad-request") && response.contains("not valid HTTP/1.1"))
            }
            let connect = try Self.exchange("CONNECT localhost:80 HTTP/1.1\r\nHost: x\r\n\r\n", port: server.port)
            #expect(Self.status(connect) == "HTTP/1.1 405 Method Not Allowed", "\(connect)")
            #expect(connect.contains("content-length: ") && connect.hasSuffix("method-not-allowed\"}"), "\(connect)")
        }
    }
}
