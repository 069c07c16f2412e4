import Metrics
import Synchronization

/// Per-image series, for operators who ask for them (one label value per attached image, so off by
/// default): gauges `pageshare_image_resident_bytes{image}` and `pageshare_image_logical_read_bytes{image}`,
/// counters `pageshare_image_{hits,misses,fills}_total{image}`. The series of a detached image are removed
/// at the next publish, so the label set stays the attached images.
final class ImageMetrics: Sendable {
    private struct Series: Sendable {
        var resident: Gauge
        var logicalRead: Gauge
        var hits: Counter
        var misses: Counter
        var fills: Counter
        var last: ImageStatistics?
    }

    private let series = Mutex<[ByteKey: Series]>([:])

    func publish(_ statistics: [ByteKey: ImageStatistics], to factory: any MetricsFactory) {
        self.series.withLock { series in
            for (id, gone) in series where statistics[id] == nil {
                gone.resident.destroy()
                gone.logicalRead.destroy()
                gone.hits.destroy()
                gone.misses.destroy()
                gone.fills.destroy()
                series[id] = nil
            }
            for (id, values) in statistics {
                var entry = series[id] ?? Self.makeSeries(id.string, factory: factory)
                entry.resident.record(values.residentBytes)
                entry.logicalRead.record(values.logicalReadBytes)
                let last = entry.last
                entry.hits.advance(to: values.hits, from: last?.hits)
                entry.misses.advance(to: values.misses, from: last?.misses)
                entry.fills.advance(to: values.fills, from: last?.fills)
                entry.last = values
                series[id] = entry
            }
        }
    }

    private static func makeSeries(_ id: String, factory: any MetricsFactory) -> Series {
        let dimensions = [("image", id)]
        func counter(_ label: String) -> Counter { Counter(label: label, dimensions: dimensions, factory: factory) }
        return Series(
            resident: Gauge(label: "pageshare_image_resident_bytes", dimensions: dimensions, factory: factory),
            logicalRead: Gauge(label: "pageshare_image_logical_read_bytes", dimensions: dimensions, factory: factory),
            hits: counter("pageshare_image_hits_total"), misses: counter("pageshare_image_misses_total"),
            fills: counter("pageshare_image_fills_total"), last: nil)
    }
}
