import EROFS
import EROFSTestSupport
import Foundation
import Glibc
import PageCache
import Testing

@testable import PageShareServer

@Suite("Metrics and health endpoints", .serialized)
struct MetricsEndpointTests {
    /// The value of the series `name{labels}` in a Prometheus text exposition.
    static func value(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == series { return Double(parts[1]) }
        }
        return nil
    }

    @Test("requests are counted by their exact status: 200, 206, 304, 404, 416")
    func exactStatusCodes() async throws {
        let image = try TestImage(options: []) { try ServedTree.write(at: $0) }
        defer { image.remove() }
        let server = try await ServerFixture.start([("a", try image.open(), "default", .none)])
        let path = "/v1/images/a/files/dir/nested/medium.bin"
        let whole = try await server.get(path)
        let etag = try #require(whole.header("etag"))
        #expect(try await server.get(path, headers: ["Range": "bytes=0-99"]).status == 206)
        #expect(try await server.get(path, headers: ["Range": "bytes=0-99"]).status == 206)
        #expect(try await server.get(path, headers: ["If-None-Match": etag]).status == 304)
        #expect(try await server.get(path, headers: ["Range": "bytes=99999999-"]).status == 416)
        #expect(try await server.get("/v1/images/a/files/missing").status == 404)
        let text = try await server.get("/metrics").bodyText
        for (status, count) in [("200", 1.0), ("206", 2), ("304", 1), ("416", 1), ("404", 1)] {
            let series = "pageshare_http_requests_total{route=\"files\",status=\"\(status)\"}"
            #expect(Self.value(text, series) == count, "\(series)")
        }
        await server.stop()
    }

    @Test("/metrics counts exactly: bytes saved by sharing, cache events, requests by route and status")
    func exactDeltas() async throws {
        let image = try TestImage(options: []) { try ServedTree.write(at: $0) }
        defer { image.remove() }
        let server = try await ServerFixture.start([
            ("a", try image.open(), "tenant", .digest), ("b", try image.open(), "tenant", .digest),
        ])
        let pages = (300_000 + 4095) / 4096
        _ = try await server.get("/v1/images/a/files/dir/nested/medium.bin")
        _ = try await server.get("/v1/images/b/files/dir/nested/medium.bin", over: .http2)
        _ = try await server.get("/v1/images/a/files/missing")
        _ = try await server.get("/v1/images/a/stat/one")
        let scrape = try await server.get("/metrics")
        #expect(scrape.status == 200 && scrape.header("content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let text = scrape.bodyText
        let domain = "{domain=\"tenant\"}"
        #expect(Self.value(text, "pageshare_cache_resident_bytes\(domain)") == Double(pages * 4096))
        #expect(Self.value(text, "pageshare_cache_saved_bytes\(domain)") == Double(pages * 4096))
        #expect(Self.value(text, "pageshare_cache_logical_read_bytes\(domain)") == 600_000)
        #expect(Self.value(text, "pageshare_cache_fills_total\(domain)") == Double(pages))
        #expect(Self.value(text, "pageshare_cache_misses_total\(domain)") == Double(pages))
        #expect(Self.value(text, "pageshare_cache_used_bytes") == Double(pages * 4096), "resident across domains")
        #expect(Self.value(text, "pageshare_cache_attached_images") == 2)
        #expect(Self.value(text, "pageshare_cache_dedup_inodes") == 1)
        #expect(Self.value(text, "pageshare_http_requests_total{route=\"files\",status=\"200\"}") == 2)
        #expect(Self.value(text, "pageshare_http_requests_total{route=\"files\",status=\"404\"}") == 1)
        #expect(Self.value(text, "pageshare_http_requests_total{route=\"stat\",status=\"200\"}") == 1)
        #expect(Self.value(text, "pageshare_http_sent_bytes_total{route=\"files\"}").map { $0 >= 600_000 } == true)
        #expect(Self.value(text, "pageshare_http_request_duration_seconds_count{route=\"files\"}") == 3)
        #expect(text.contains("pageshare_http_request_duration_seconds_bucket{route=\"files\",le=\"0.00005\"}"))
        let metadata = try #require(Self.value(text, "pageshare_cache_metadata_bytes"))
        #expect(metadata > 0 && metadata <= 0.015 * Double(64 << 20), "bookkeeping within 1.5 % of the budget")
        #expect(Self.value(text, "pageshare_image_read_errors_total") == 0)
        #expect(Self.value(text, "pageshare_http_open_streams{protocol=\"h2\"}") == 0, "the h2 stream has closed")

        // A second scrape advances the counters by what happened in between, no more.
        _ = try await server.get("/v1/images/a/files/dir/nested/medium.bin")
        let again = try await server.get("/metrics").bodyText
        #expect(Self.value(again, "pageshare_cache_fills_total\(domain)") == Double(pages))
        #expect(Self.value(again, "pageshare_cache_hits_total\(domain)").map { $0 >= Double(2 * pages) } == true)
        #expect(Self.value(again, "pageshare_http_requests_total{route=\"metrics\",status=\"200\"}") == 1)
        await server.stop()
    }

    @Test("decompression counters by algorithm grow with what is decompressed (process-wide, so at least)")
    func decompressionCounters() async throws {
        let image = try TestImage(options: ["-zlz4hc"]) { try ServedTree.write(at: $0) }
        defer { image.remove() }
        let server = try await ServerFixture.start([("z", try image.open(), "default", .none)])
        let before = try await server.get("/metrics").bodyText
        let text = ServedTree.content("text/repeated.txt")!
        #expect(try await server.get("/v1/images/z/files/text/repeated.txt").body == text)
        let after = try await server.get("/metrics").bodyText
        func delta(_ series: String) -> Double {
            (Self.value(after, series) ?? 0) - (Self.value(before, series) ?? 0)
        }
        #expect(delta(#"pageshare_decompression_output_bytes_total{algorithm="lz4"}"#) >= Double(text.count))
        #expect(delta(#"pageshare_decompression_pclusters_total{algorithm="lz4"}"#) >= 1)
        #expect(delta(#"pageshare_decompression_input_bytes_total{algorithm="lz4"}"#) >= 1)
        #expect(delta(#"pageshare_decompression_seconds_total{algorithm="lz4"}"#) > 0)
        #expect(Self.value(after, #"pageshare_decompression_output_bytes_total{algorithm="zstd"}"#) != nil)
        await server.stop()
    }

    @Test("per-image series only when asked for; a detached image's series go away")
    func perImageSeries() async throws {
        let image = try TestImage(options: []) { try ServedTree.write(at: $0) }
        defer { image.remove() }
        let plain = try await ServerFixture.start([("a", try image.open(), "default", .none)])
        _ = try await plain.get("/v1/images/a/files/page")
        #expect(!(try await plain.get("/metrics").bodyText.contains("pageshare_image_resident")), "off by default")
        await plain.stop()
        let server = try await ServerFixture.start(
            [("a", try image.open(), "default", .none), ("b", try image.open(), "default", .none)],
            perImageMetrics: true)
        _ = try await server.get("/v1/images/a/files/page")
        _ = try await server.get("/v1/images/a/files/page-plus-one")
        let text = try await server.get("/metrics").bodyText
        #expect(Self.value(text, #"pageshare_image_logical_read_bytes{image="a"}"#) == Double(4096 + 4097))
        #expect(Self.value(text, #"pageshare_image_resident_bytes{image="a"}"#) == Double(3 * 4096))
        #expect(Self.value(text, #"pageshare_image_misses_total{image="a"}"#) == 3)
        #expect(Self.value(text, #"pageshare_image_logical_read_bytes{image="b"}"#) == 0)
        try server.cache.detach(id: "b")
        let after = try await server.get("/metrics").bodyText
        #expect(!after.contains(#"image="b""#), "the detached image's series are gone")
        #expect(after.contains(#"pageshare_image_hits_total{image="a"}"#))
        await server.stop()
    }

    @Test("process_* series as Prometheus clients name them, read from /proc at scrape time")
    func processSeries() async throws {
        let image = try TestImage(options: []) { try ServedTree.write(at: $0) }
        defer { image.remove() }
        let server = try await ServerFixture.start([("a", try image.open(), "default", .none)])
        let text = try await server.get("/metrics").bodyText
        // The server runs in this process: its /proc figures are this process's.
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let rssKiB =
            status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
            .flatMap { Double($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        let rss = try #require(Self.value(text, "process_resident_memory_bytes"))
        #expect(abs(rss - rssKiB * 1024) < rssKiB * 1024 * 0.5, "\(rss) vs VmRSS \(rssKiB) KiB")
        #expect((Self.value(text, "process_cpu_seconds_total") ?? 0) > 0)
        #expect((Self.value(text, "process_open_fds") ?? 0) > 3)
        #expect((Self.value(text, "process_max_fds") ?? 0) >= Self.value(text, "process_open_fds") ?? .infinity)
        let start = try #require(Self.value(text, "process_start_time_seconds"))
        #expect(start > 1.7e9 && start <= Date().timeIntervalSince1970)
        await server.stop()
    }

    @Test("/healthz and /readyz answer over both protocols")
    func health() async throws {
        let image = try TestImage(options: []) { try ServedTree.write(at: $0) }
        defer { image.remove() }
        let server = try await ServerFixture.start([("a", try image.open(), "default", .none)])
        for transport in [ServerFixture.Transport.http1, .http2] {
            let alive = try await server.get("/healthz", over: transport)
            #expect(alive.status == 200 && alive.bodyText == "ok\n")
            let ready = try await server.get("/readyz", over: transport)
            #expect(ready.status == 200 && ready.bodyText == "ready\n")
        }
        await server.stop()
    }

    @Test("promtool accepts the exposition after traffic", .enabled(if: which("promtool") != nil, "needs promtool"))
    func promtool() async throws {
        let image = try TestImage(options: []) { try ServedTree.write(at: $0) }
        defer { image.remove() }
        let server = try await ServerFixture.start([("a", try image.open(), "default", .digest)])
        _ = try await server.get("/v1/images/a/files/big.bin", over: .http2)
        _ = try await server.get("/v1/images/a/files/missing")
        let file = server.directory.path + "/metrics.txt"
        try TestTree.write(file, try await server.get("/metrics").body)
        let checked = try run("/bin/sh", ["-c", "\(which("promtool")!) check metrics < '\(file)'"])
        #expect(checked.status == 0, "promtool: \(String(decoding: checked.output, as: UTF8.self)) \(checked.error)")
        await server.stop()
    }

    @Test(
        "a real Prometheus scrapes the series and returns them through its HTTP API",
        .enabled(if: which("prometheus") != nil, "needs the prometheus binary"))
    func prometheusScrapes() async throws {
        let image = try TestImage(options: []) { try ServedTree.write(at: $0) }
        defer { image.remove() }
        let server = try await ServerFixture.start([
            ("a", try image.open(), "tenant", .digest), ("b", try image.open(), "tenant", .digest),
        ])
        _ = try await server.get("/v1/images/a/files/dir/nested/medium.bin")
        _ = try await server.get("/v1/images/b/files/dir/nested/medium.bin")
        let expected = Double((300_000 + 4095) / 4096 * 4096)

        let port = try #require(freeLoopbackPort())
        let config = server.directory.path + "/prometheus.yml"
        try TestTree.write(
            config,
            Array(
                """
                global:
                  scrape_interval: 1s
                scrape_configs:
                  - job_name: pageshare
                    static_configs:
                      - targets: ["127.0.0.1:\(server.port)"]

                """.utf8))
        let prometheus = Process()
        prometheus.executableURL = URL(fileURLWithPath: which("prometheus")!)
        prometheus.arguments = [
            "--config.file=\(config)", "--storage.tsdb.path=\(server.directory.path)/tsdb",
            "--web.listen-address=127.0.0.1:\(port)", "--log.level=error",
        ]
        prometheus.standardOutput = FileHandle.nullDevice
        prometheus.standardError = FileHandle.nullDevice
        try prometheus.run()
        defer {
            prometheus.terminate()
            prometheus.waitUntilExit()
        }
        let query = "pageshare_cache_saved_bytes%7Bdomain%3D%22tenant%22%7D"
        var value: Double? = nil
        for _ in 0..<60 where value == nil {
            try await Task.sleep(for: .milliseconds(500))
            let answer = try run(
                which("curl")!, ["-s", "http://127.0.0.1:\(port)/api/v1/query?query=\(query)"])
            value = Self.firstValue(answer.output)
        }
        #expect(value == expected, "Prometheus read pageshare_cache_saved_bytes back")
        await server.stop()
    }

    /// The first sample value of a Prometheus instant-query answer.
    static func firstValue(_ json: [UInt8]) -> Double? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any],
            let data = object["data"] as? [String: Any], let results = data["result"] as? [[String: Any]],
            let sample = results.first?["value"] as? [Any], sample.count == 2, let text = sample[1] as? String
        else { return nil }
        return Double(text)
    }
}
