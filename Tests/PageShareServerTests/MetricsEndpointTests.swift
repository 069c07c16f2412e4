import EROFS
import EROFSTestSupport
import Foundation
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
        #expect(Self.value(text, "pageshare_cache_attached_images") == 2)
        #expect(Self.value(text, "pageshare_cache_dedup_inodes") == 1)
        #expect(Self.value(text, "pageshare_http_requests_total{route=\"files\",status=\"2xx\"}") == 2)
        #expect(Self.value(text, "pageshare_http_requests_total{route=\"files\",status=\"4xx\"}") == 1)
        #expect(Self.value(text, "pageshare_http_requests_total{route=\"stat\",status=\"2xx\"}") == 1)
        #expect(Self.value(text, "pageshare_http_sent_bytes_total{route=\"files\"}").map { $0 >= 600_000 } == true)
        #expect(Self.value(text, "pageshare_http_request_duration_seconds_count{route=\"files\"}") == 3)
        #expect(text.contains("pageshare_http_request_duration_seconds_bucket{route=\"files\",le=\"0.00005\"}"))

        // A second scrape advances the counters by what happened in between, no more.
        _ = try await server.get("/v1/images/a/files/dir/nested/medium.bin")
        let again = try await server.get("/metrics").bodyText
        #expect(Self.value(again, "pageshare_cache_fills_total\(domain)") == Double(pages))
        #expect(Self.value(again, "pageshare_cache_hits_total\(domain)").map { $0 >= Double(2 * pages) } == true)
        #expect(Self.value(again, "pageshare_http_requests_total{route=\"metrics\",status=\"2xx\"}") == 1)
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
}
