import EROFSTestSupport
import Foundation
import PageCache
import Testing

@testable import PageShareServer

/// HTTP/2 at the frame level, driven by python3-h2 (`Tests/Scripts/h2_client.py`): flow control and
/// backpressure, RST_STREAM, request bodies past the connection's initial window, GOAWAY, limits. The server
/// runs HTTP/2 on libnghttp2 and answers streams in its own handler (``HTTP2Connection``), so these are its
/// mechanisms under test.
@Suite("HTTP/2 streams", .serialized, .enabled(if: H2Client.isAvailable, "needs /usr/bin/python3 with python3-h2"))
struct HTTP2StreamTests {
    static func makeImage() throws -> TestImage {
        try TestImage(options: []) { try ServedTree.write(at: $0) }
    }

    /// Runs `body` against a server with the served tree attached as `img`, then stops it.
    static func withServer(_ body: (ServerFixture) async throws -> Void) async throws {
        let image = try Self.makeImage()
        defer { image.remove() }
        let server = try await ServerFixture.start([("img", try image.open(), "default", .none)])
        try await body(server)
        await server.stop()
    }

    static func sha256(_ bytes: [UInt8]) -> String {
        sha256Hex(bytes)
    }

    @Test("a client that stops reading holds the server at its windows; every body completes when it reads again")
    func flowControlAndBackpressure() async throws {
        try await Self.withServer { server in
            let streams = 4
            let result = try await H2Client.run(
                port: server.port, ["window", "/v1/images/img/files/big.bin", "\(streams)"])
            let big = ServedTree.content("big.bin")!
            // 16 KiB stream windows, the initial 64 KiB connection window: nothing beyond them may arrive.
            let received = try #require(result["received_while_stalled"] as? Int)
            #expect(received > 0 && received <= 65_535, "\(received) bytes arrived while the client read nothing")
            // Backpressure: while blocked, each stream read at most about two 64 KiB chunks from the cache, not
            // its 2.5 MB file.
            let read = try #require(result["read_while_stalled"] as? Double)
            #expect(read <= Double(streams * 192 * 1024), "\(Int(read)) bytes read from the cache while stalled")
            let bodies = try #require(result["bodies"] as? [[String: Any]])
            #expect(bodies.count == streams)
            for body in bodies {
                #expect(body["status"] as? Int == 200 && body["ended"] as? Bool == true)
                #expect(body["length"] as? Int == big.count)
                #expect(body["sha256"] as? String == Self.sha256(big))
            }
        }
    }

    @Test("RST_STREAM stops a download at once; the connection and its next stream go on")
    func resetStopsTheStream() async throws {
        try await Self.withServer { server in
            let result = try await H2Client.run(
                port: server.port,
                ["cancel", "/v1/images/img/files/big.bin", "/v1/images/img/files/dir/nested/medium.bin"])
            let received = try #require(result["received_before_reset"] as? Int)
            #expect(received >= 16384 && received <= 65_535)
            let afterReset = try #require(result["read_after_reset"] as? Double)
            // A few chunks (and the reads ahead of them) before the reset: not the 2.5 MB file.
            #expect(afterReset <= 512 * 1024, "\(Int(afterReset)) bytes of the 2.5 MB file read although it was reset")
            #expect(result["read_later"] as? Double == afterReset, "the reset stream kept reading")
            #expect(result["open_streams_after_reset"] as? Double == 0)
            let second = try #require(result["second"] as? [String: Any])
            #expect(second["status"] as? Int == 200 && second["ended"] as? Bool == true)
            #expect(second["sha256"] as? String == Self.sha256(ServedTree.content("dir/nested/medium.bin")!))
        }
    }

    @Test("a request body past the 64 KiB connection window is read (WINDOW_UPDATE) and refused with 413")
    func requestBodyWindow() async throws {
        try await Self.withServer { server in
            let size = 300 * 1024
            let result = try await H2Client.run(port: server.port, ["post", "/v1/admin/images", "\(size)"])
            #expect(result["sent"] as? Int == size)
            #expect(result["status"] as? Int == 413 && result["ended"] as? Bool == true)
            #expect((result["body"] as? String)?.contains("body-too-large") == true)
            // A small body over h2 still reaches the admin API (a bad one: 400, not a stall).
            let small = try await server.send("POST", "/v1/admin/images", json: "{}", over: .http2)
            #expect(small.status == 400 && small.httpVersion == "2")
        }
    }
}

extension HTTP2StreamTests {
    @Test(
        "shutdown: a GOAWAY for the last possible stream, then one naming the stream in flight, which finishes whole; then the connection closes"
    )
    func gracefulShutdown() async throws {
        let image = try Self.makeImage()
        defer { image.remove() }
        let server = try await ServerFixture.start([("img", try image.open(), "default", .none)])
        async let answer = H2Client.run(port: server.port, ["goaway", "/v1/images/img/files/big.bin"])
        // Shut down while the download is held by its 16 KiB window.
        var open = false
        for _ in 0..<100 where !open {
            try await Task.sleep(for: .milliseconds(20))
            let metrics = try await server.get("/metrics").bodyText
            open = metrics.contains(#"pageshare_http_open_streams{protocol="h2"} 1"#)
        }
        #expect(open, "the stream was seen open")
        await server.server.shutdown()
        let result = try await answer
        #expect(result["goaway_last_stream"] as? Int == 1)
        // Two steps (RFC 9113 §6.8): the last possible stream first, then, after a PING round trip, stream 1.
        #expect(result["goaways"] as? [Int] == [2_147_483_647, 1], "\(result["goaways"] ?? "none")")
        #expect(result["status"] as? Int == 200 && result["ended"] as? Bool == true)
        #expect(result["sha256"] as? String == Self.sha256(ServedTree.content("big.bin")!), "finished whole")
        #expect(result["late_status"] is NSNull, "a stream opened after the GOAWAY is not answered")
        #expect(result["closed"] as? Bool == true, "the server closed the connection")
        server.directory.remove()
    }
}

extension HTTP2StreamTests {
    @Test("a malformed request is reset on its own stream; the download beside it on the connection finishes")
    func malformedRequestIsAStreamError() async throws {
        try await Self.withServer { server in
            let result = try await H2Client.run(port: server.port, ["malformed", "/v1/images/img/files/big.bin"])
            #expect(result["bad_reset"] as? Int == 1, "PROTOCOL_ERROR on the malformed stream")
            #expect(result["bad_status"] is NSNull)
            #expect(result["good_status"] as? Int == 200 && result["good_ended"] as? Bool == true)
            #expect(result["good_sha256"] as? String == Self.sha256(ServedTree.content("big.bin")!))
            #expect(result["closed"] as? Bool == false)
        }
    }

    @Test("a stream past MAX_CONCURRENT_STREAMS is refused on its own (REFUSED_STREAM); the others go on")
    func streamsOverTheLimitAreRefused() async throws {
        try await Self.withServer { server in
            // The server answers 128 at once (the default); the client opens 130 that cannot finish.
            let result = try await H2Client.run(
                port: server.port, ["overlimit", "/v1/images/img/files/big.bin", "130"])
            let resets = result["resets"] as? [Any] ?? []
            #expect(resets.count == 130)
            #expect(resets.prefix(128).allSatisfy { $0 is NSNull }, "the 128 streams in flight are kept")
            #expect(resets.suffix(2).allSatisfy { $0 as? Int == 7 }, "REFUSED_STREAM for the two over the limit")
            #expect(result["answered"] as? Int == 128)
            #expect(result["goaway_last_stream"] is NSNull && result["closed"] as? Bool == false, "no GOAWAY")
        }
    }

    @Test("a header list over the advertised limit is answered 431 on its own stream; the download beside it goes on")
    func oversizedHeaderListIsRefused() async throws {
        try await Self.withServer { server in
            let result = try await H2Client.run(port: server.port, ["bigheaders", "/v1/images/img/files/big.bin"])
            #expect(result["big_status"] as? Int == 431, "\(result)")
            #expect((result["big_body"] as? String)?.contains("request-header-fields-too-large") == true)
            #expect(result["good_status"] as? Int == 200 && result["good_ended"] as? Bool == true)
            #expect(result["good_sha256"] as? String == Self.sha256(ServedTree.content("big.bin")!))
            #expect(result["closed"] as? Bool == false)
        }
    }

    @Test("a CONTINUATION flood (a header block over more than 5 frames) gets the connection closed")
    func continuationFloodClosesTheConnection() async throws {
        try await Self.withServer { server in
            let result = try await H2Client.run(
                port: server.port, ["continuation", "/v1/images/img/files/one"])
            #expect(result["goaway_last_stream"] is Int, "a GOAWAY came: \(result)")
            #expect(result["closed"] as? Bool == true)
            let after = try await server.get("/v1/images/img/files/one", over: .http2)
            #expect(after.status == 200, "the server goes on")
        }
    }

    @Test("rapid reset (CVE-2023-44487): streams opened and reset at once get the connection closed")
    func rapidResetClosesTheConnection() async throws {
        try await Self.withServer { server in
            let result = try await H2Client.run(port: server.port, ["rapidreset", "/v1/images/img/files/big.bin"])
            #expect(result["goaway_last_stream"] is Int, "a GOAWAY came: \(result)")
            #expect(result["closed"] as? Bool == true)
            let after = try await server.get("/v1/images/img/files/one", over: .http2)
            #expect(after.status == 200, "the server goes on")
        }
    }
}

/// Runs `Tests/Scripts/h2_client.py` with Debian's python3 (which has python3-h2) on a thread of its own.
enum H2Client {
    static let python = "/usr/bin/python3"
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Scripts/h2_client.py").path

    static var isAvailable: Bool {
        (try? EROFSTestSupport.run(Self.python, ["-c", "import h2"]))?.status == 0
    }

    static func run(port: Int, _ arguments: [String]) async throws -> [String: Any] {
        let result = try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(
                    with: Result { try EROFSTestSupport.run(Self.python, [Self.script, String(port)] + arguments) })
            }.start()
        }
        try #require(result.status == 0, "h2_client.py \(arguments): \(result.error)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.output)) as? [String: Any])
    }
}
