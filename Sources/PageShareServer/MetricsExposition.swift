import Prometheus

/// The `/metrics` body: the registry's text exposition with a `# HELP` line before each family (promtool and
/// Prometheus's best practices want one; swift-metrics has no place for help text).
public enum MetricsExposition {
    static let help: [String: String] = [
        "pageshare_cache_resident_bytes": "Bytes of page data resident for the domain's content.",
        "pageshare_cache_saved_bytes":
            "Bytes whole-file sharing saves: sum over shared files of (sharers - 1) x resident bytes.",
        "pageshare_cache_chunk_saved_bytes":
            "Bytes chunk sharing saves on top: sum over resident chunks of (references - 1) x length.",
        "pageshare_cache_logical_read_bytes": "Bytes served to readers of the domain's images.",
        "pageshare_cache_quota_bytes": "The domain's resident-bytes quota (-1: none).",
        "pageshare_cache_hits_total": "Page or chunk reads answered from resident pages or chunks.",
        "pageshare_cache_misses_total": "Page reads that found no resident page.",
        "pageshare_cache_fills_total": "Pages read from an image and published.",
        "pageshare_cache_evictions_total": "Pages evicted to make room.",
        "pageshare_cache_verify_failures_total":
            "Files whose bytes did not match their fingerprint (cached privately).",
        "pageshare_cache_budget_bytes": "The hard budget for page data.",
        "pageshare_cache_attached_images": "Images attached.",
        "pageshare_cache_dedup_inodes": "Dedup inodes (distinct cached contents) known.",
        "pageshare_http_requests_total": "Requests answered, by route and status code (aborted: body cut short).",
        "pageshare_http_sent_bytes_total": "Response body bytes sent, by route.",
        "pageshare_http_request_duration_seconds": "Time from request head to the end of the response.",
        "pageshare_http_open_connections": "Connections open, by protocol.",
        "pageshare_http_open_streams": "HTTP/2 streams open.",
        "pageshare_http_unsent_bytes":
            "Response bytes produced and not yet sent, all connections (the send budget's use).",
        "pageshare_http_unsent_borrowed_bytes":
            "The part of the unsent bytes borrowed from the shared pool beyond floors.",
        "pageshare_http_send_timeouts_total":
            "Connections closed and HTTP/2 streams reset because writes made no progress.",
        "pageshare_images_failed":
            "Images listed as failed: configured or saved, and not attached (see the admin API).",
        "pageshare_http_auth_failures_total":
            "Requests refused before routing, by reason: missing or invalid token, forbidden role, rate limited.",
        "pageshare_decompression_pclusters_total": "Compressed pclusters decoded, by algorithm.",
        "pageshare_decompression_input_bytes_total": "Compressed bytes decoded, by algorithm.",
        "pageshare_decompression_output_bytes_total": "Bytes produced by decompression, by algorithm.",
        "pageshare_decompression_seconds_total": "Time spent decompressing, by algorithm.",
        "pageshare_decompression_failures_total": "Compressed streams that failed to decode, by algorithm.",
        "pageshare_image_resident_bytes": "Bytes resident for the files an image has read (metricsPerImage).",
        "pageshare_image_logical_read_bytes": "Bytes served to an image's readers (metricsPerImage).",
        "pageshare_image_hits_total": "Page hits of an image's reads (metricsPerImage).",
        "pageshare_image_misses_total": "Page misses of an image's reads (metricsPerImage).",
        "pageshare_image_fills_total": "Pages an image's reads brought in (metricsPerImage).",
        "pageshare_cache_used_bytes": "Bytes of page data resident across all domains.",
        "pageshare_cache_metadata_bytes": "Bytes of cache bookkeeping beside the page data.",
        "pageshare_image_read_errors_total": "Image reads that failed while filling pages.",
    ]

    /// Renders `registry` with help lines, and the `process_*` series read from `/proc`.
    public static func render(_ registry: PrometheusCollectorRegistry) -> [UInt8] {
        var out = ""
        for line in registry.emitToString().split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE ") {
                let name = line.dropFirst(7).prefix(while: { $0 != " " })
                if let text = Self.help[String(name)] { out += "# HELP \(name) \(text)\n" }
            }
            out += line
            out += "\n"
        }
        if out.hasSuffix("\n\n") { out.removeLast() }
        out += ProcessMetrics.exposition()
        return Array(out.utf8)
    }
}
