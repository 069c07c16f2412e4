import EROFSTestSupport
import Foundation
import Glibc
import PageCache
import Testing

@testable import PageShareServer

/// HTTP/1.1 pipelining on a raw socket: requests sent back to back in one write are answered in order, each
/// complete, whatever their kind (ranges, HEAD, errors, a large body that needs backpressure), and a flood of
/// them is answered without loss.
@Suite("HTTP/1.1 pipelining")
struct PipeliningTests {
    struct Response: Equatable {
        var status: Int
        var body: [UInt8]
    }

    /// Sends `requests` in one write to 127.0.0.1:`port`, reads until the server closes, and splits what came
    /// back into responses (`heads`: which requests were HEAD, whose responses have no body).
    static func pipeline(port: Int, _ requests: [String], heads: Set<Int> = []) async throws -> [Response] {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(
                    with: Result { try Self.pipelineBlocking(port: port, requests, heads: heads) })
            }.start()
        }
    }

    private static func pipelineBlocking(port: Int, _ requests: [String], heads: Set<Int>) throws -> [Response] {
        let socket = try SlowClient.connectLoopback(port: port)
        defer { close(socket) }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array(requests.joined().utf8)
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { send(socket, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { throw SlowClient.Failure(description: "send: \(errno)") }
            sent += count
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = recv(socket, &buffer, buffer.count, 0)
            guard count > 0 else { break }
            received += buffer[0..<count]
        }
        return try Self.split(received, heads: heads)
    }

    static func split(_ bytes: [UInt8], heads: Set<Int>) throws -> [Response] {
        var responses: [Response] = []
        var offset = 0
        let separator = Array("\r\n\r\n".utf8)
        while offset < bytes.count {
            guard let end = Self.find(separator, in: bytes, from: offset) else {
                throw SlowClient.Failure(description: "a response head is cut short at \(offset)")
            }
            let head = String(decoding: bytes[offset..<end], as: UTF8.self)
            let lines = head.components(separatedBy: "\r\n")
            let status = Int(lines[0].split(separator: " ")[1]) ?? 0
            var length = 0
            for line in lines.dropFirst() where line.lowercased().hasPrefix("content-length:") {
                length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
            }
            if heads.contains(responses.count) || status == 304 || status == 204 { length = 0 }
            let bodyStart = end + separator.count
            guard bodyStart + length <= bytes.count else {
                throw SlowClient.Failure(description: "response \(responses.count) is cut short")
            }
            responses.append(Response(status: status, body: Array(bytes[bodyStart..<bodyStart + length])))
            offset = bodyStart + length
        }
        return responses
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard haystack.count - start >= needle.count else { return nil }
        for index in start...(haystack.count - needle.count)
        where haystack[index] == needle[0] && haystack[index..<index + needle.count].elementsEqual(needle) {
            return index
        }
        return nil
    }

    static func get(_ path: String, range: String? = nil, method: String = "GET", close: Bool = false) -> String {
        var request = "\(method) /v1/images/img/files/\(path) HTTP/1.1\r\nHost: localhost\r\n"
        if let range { request += "Range: bytes=\(range)\r\n" }
        if close { request += "Connection: close\r\n" }
        return request + "\r\n"
    }

    @Test("mixed requests in one write are answered in order: ranges, HEAD, a 404, a large body, then close")
    func mixedRequestsInOrder() async throws {
        let image = try FileServingTests.makeImage([])
        defer { image.remove() }
        let server = try await ServerFixture.start([("img", try image.open(), "default", .none)])
        let page = ServedTree.content("page")!
        let big = ServedTree.content("big.bin")!
        let medium = ServedTree.content("dir/nested/medium.bin")!
        let responses = try await Self.pipeline(
            port: server.port,
            [
                Self.get("page", range: "0-99"), Self.get("dir/nested/medium.bin", method: "HEAD"),
                Self.get("missing"), Self.get("big.bin"), Self.get("page", range: "100-199"),
                Self.get("dir/nested/medium.bin", close: true),
                Self.get("page"),  // after the close: never answered
            ],
            heads: [1])
        #expect(responses.map(\.status) == [206, 200, 404, 200, 206, 200])
        #expect(responses[0].body == Array(page[0..<100]))
        #expect(responses[1].body.isEmpty)
        #expect(String(decoding: responses[2].body, as: UTF8.self).contains("\"status\":404"))
        #expect(responses[3].body == big, "a 2.5 MB body between small ones")
        #expect(responses[4].body == Array(page[100..<200]))
        #expect(responses[5].body == medium)
        await server.stop()
    }

    @Test("a flood of 2,000 pipelined range requests is answered in full and in order")
    func floodInOrder() async throws {
        let image = try FileServingTests.makeImage([])
        defer { image.remove() }
        let server = try await ServerFixture.start([("img", try image.open(), "default", .none)])
        let big = ServedTree.content("big.bin")!
        let count = 2000
        var requests = (0..<count - 1).map { Self.get("big.bin", range: "\($0 * 1000)-\($0 * 1000 + 999)") }
        requests.append(Self.get("big.bin", range: "\((count - 1) * 1000)-\((count - 1) * 1000 + 999)", close: true))
        let responses = try await Self.pipeline(port: server.port, requests)
        #expect(responses.count == count)
        for (index, response) in responses.enumerated() {
            #expect(response.status == 206 && response.body == Array(big[index * 1000..<index * 1000 + 1000]))
            if response.status != 206 { break }
        }
        await server.stop()
    }
}
