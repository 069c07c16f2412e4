import Metrics
import Synchronization

/// The cache's swift-metrics series, created once (per domain) and updated from the accounting when
/// published (on each scrape): gauges for levels, counters (advanced by the change since the last publish)
/// for events. Label cardinality is bounded by the number of domains.
final class CacheMetrics: Sendable {
    private struct DomainSeries: Sendable {
        var resident: Gauge
        var saved: Gauge
        var chunkSaved: Gauge
        var logicalRead: Gauge
        var quota: Gauge
        var hits: Counter
        var misses: Counter
        var fills: Counter
        var evictions: Counter
        var verifyFailures: Counter
        /// The statistics last published, to advance the counters by the difference.
        var last: DomainStatistics?
    }

    private struct GlobalSeries: Sendable {
        var budget: Gauge
        var used: Gauge
        var images: Gauge
        var dedupInodes: Gauge
        var metadata: Gauge
        var readErrors: Counter
        var lastReadErrors: Int = 0
    }

    private let series = Mutex<(domains: [TrustDomain: DomainSeries], global: GlobalSeries?)>(([:], nil))

    /// Publishes per domain: `pageshare_cache_resident_bytes`, `pageshare_cache_saved_bytes`,
    /// `pageshare_cache_chunk_saved_bytes`,
    /// `pageshare_cache_logical_read_bytes`, `pageshare_cache_quota_bytes` (-1: none) and the counters
    /// `pageshare_cache_{hits,misses,fills,evictions,verify_failures}_total`; globally
    /// `pageshare_cache_budget_bytes`, `pageshare_cache_used_bytes` (resident across domains),
    /// `pageshare_cache_attached_images`, `pageshare_cache_dedup_inodes`, `pageshare_cache_metadata_bytes` and
    /// the counter `pageshare_image_read_errors_total`.
    func publish(
        _ statistics: [TrustDomain: (DomainStatistics, quota: Int?)], budget: Int, used: Int, images: Int,
        dedupInodes: Int,
        metadataBytes: Int, readErrors: Int, to factory: any MetricsFactory
    ) {
        self.series.withLock { series in
            var global =
                series.global
                ?? GlobalSeries(
                    budget: Gauge(label: "pageshare_cache_budget_bytes", factory: factory),
                    used: Gauge(label: "pageshare_cache_used_bytes", factory: factory),
                    images: Gauge(label: "pageshare_cache_attached_images", factory: factory),
                    dedupInodes: Gauge(label: "pageshare_cache_dedup_inodes", factory: factory),
                    metadata: Gauge(label: "pageshare_cache_metadata_bytes", factory: factory),
                    readErrors: Counter(label: "pageshare_image_read_errors_total", factory: factory))
            global.budget.record(budget)
            global.used.record(used)
            global.images.record(images)
            global.dedupInodes.record(dedupInodes)
            global.metadata.record(metadataBytes)
            global.readErrors.advance(to: readErrors, from: global.lastReadErrors)
            global.lastReadErrors = readErrors
            series.global = global
            for (domain, (values, quota)) in statistics {
                var domainSeries = series.domains[domain] ?? Self.makeSeries(domain, factory: factory)
                domainSeries.resident.record(values.residentBytes)
                domainSeries.saved.record(values.savedBytes)
                domainSeries.chunkSaved.record(values.chunkSavedBytes)
                domainSeries.logicalRead.record(values.logicalReadBytes)
                domainSeries.quota.record(quota ?? -1)
                let last = domainSeries.last
                domainSeries.hits.advance(to: values.hits, from: last?.hits)
                domainSeries.misses.advance(to: values.misses, from: last?.misses)
                domainSeries.fills.advance(to: values.fills, from: last?.fills)
                domainSeries.evictions.advance(to: values.evictions, from: last?.evictions)
                domainSeries.verifyFailures.advance(to: values.verifyFailures, from: last?.verifyFailures)
                domainSeries.last = values
                series.domains[domain] = domainSeries
            }
        }
    }

    private static func makeSeries(_ domain: TrustDomain, factory: any MetricsFactory) -> DomainSeries {
        let dimensions = [("domain", domain.name)]
        func gauge(_ label: String) -> Gauge { Gauge(label: label, dimensions: dimensions, factory: factory) }
        func counter(_ label: String) -> Counter { Counter(label: label, dimensions: dimensions, factory: factory) }
        return DomainSeries(
            resident: gauge("pageshare_cache_resident_bytes"), saved: gauge("pageshare_cache_saved_bytes"),
            chunkSaved: gauge("pageshare_cache_chunk_saved_bytes"),
            logicalRead: gauge("pageshare_cache_logical_read_bytes"), quota: gauge("pageshare_cache_quota_bytes"),
            hits: counter("pageshare_cache_hits_total"), misses: counter("pageshare_cache_misses_total"),
            fills: counter("pageshare_cache_fills_total"), evictions: counter("pageshare_cache_evictions_total"),
            verifyFailures: counter("pageshare_cache_verify_failures_total"), last: nil)
    }
}
