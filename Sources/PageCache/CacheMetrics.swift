import Metrics
import Synchronization

/// The per-domain gauges the rest of PageShare and Prometheus rely on, created once per domain and set from
/// the cache's accounting when published.
final class CacheMetrics: Sendable {
    private struct DomainGauges: Sendable {
        var resident: Gauge
        var saved: Gauge
        var logicalRead: Gauge
    }

    private let gauges = Mutex<[TrustDomain: DomainGauges]>([:])

    /// Sets `pageshare_cache_resident_bytes`, `pageshare_cache_saved_bytes` and
    /// `pageshare_cache_logical_read_bytes` (dimension `domain`) for each domain.
    func publish(_ statistics: [TrustDomain: DomainStatistics], to factory: any MetricsFactory) {
        let handles = self.gauges.withLock { gauges -> [(DomainGauges, DomainStatistics)] in
            statistics.map { domain, values in
                if let existing = gauges[domain] { return (existing, values) }
                let dimensions = [("domain", domain.name)]
                let created = DomainGauges(
                    resident: Gauge(label: "pageshare_cache_resident_bytes", dimensions: dimensions, factory: factory),
                    saved: Gauge(label: "pageshare_cache_saved_bytes", dimensions: dimensions, factory: factory),
                    logicalRead: Gauge(
                        label: "pageshare_cache_logical_read_bytes", dimensions: dimensions, factory: factory))
                gauges[domain] = created
                return (created, values)
            }
        }
        for (gauges, values) in handles {
            gauges.resident.record(values.residentBytes)
            gauges.saved.record(values.savedBytes)
            gauges.logicalRead.record(values.logicalReadBytes)
        }
    }
}
