import EROFS
import Metrics
import Synchronization

/// Publishes the decompressors' process-wide totals (`DecompressionStatistics`) as counters labelled by
/// algorithm (four values): `pageshare_decompression_pclusters_total`,
/// `pageshare_decompression_{input,output}_bytes_total`, `pageshare_decompression_seconds_total` and
/// `pageshare_decompression_failures_total`, each advanced by the change since the last publish.
final class DecompressionMetrics: Sendable {
    private struct Series: Sendable {
        var pclusters: Counter
        var input: Counter
        var output: Counter
        var seconds: FloatingPointCounter
        var failures: Counter
        var last = DecompressionStatistics()
    }

    private let series = Mutex<[CompressionAlgorithm: Series]>([:])

    func publish(to factory: any MetricsFactory) {
        let totals = DecompressionStatistics.snapshot()
        self.series.withLock { series in
            for (algorithm, now) in totals {
                var entry = series[algorithm] ?? Self.makeSeries(algorithm, factory: factory)
                let last = entry.last
                entry.pclusters.advance(to: now.pclusters, from: last.pclusters)
                entry.input.advance(to: now.inputBytes, from: last.inputBytes)
                entry.output.advance(to: now.outputBytes, from: last.outputBytes)
                if now.nanoseconds > last.nanoseconds {
                    entry.seconds.increment(by: Double(now.nanoseconds - last.nanoseconds) / 1e9)
                }
                entry.failures.advance(to: now.failures, from: last.failures)
                entry.last = now
                series[algorithm] = entry
            }
        }
    }

    private static func makeSeries(_ algorithm: CompressionAlgorithm, factory: any MetricsFactory) -> Series {
        let dimensions = [("algorithm", algorithm.description)]
        func counter(_ label: String) -> Counter { Counter(label: label, dimensions: dimensions, factory: factory) }
        return Series(
            pclusters: counter("pageshare_decompression_pclusters_total"),
            input: counter("pageshare_decompression_input_bytes_total"),
            output: counter("pageshare_decompression_output_bytes_total"),
            seconds: FloatingPointCounter(
                label: "pageshare_decompression_seconds_total", dimensions: dimensions, factory: factory),
            failures: counter("pageshare_decompression_failures_total"))
    }
}
