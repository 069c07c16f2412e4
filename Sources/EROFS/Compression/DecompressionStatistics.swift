import Synchronization

/// Work done by the decompressors since the process started, for one algorithm: pclusters decoded, bytes in
/// and out, time spent, and streams that failed to decode. Process-wide, so that a server can export it
/// (the format library itself exports nothing).
public struct DecompressionStatistics: Sendable, Hashable {
    public var pclusters = 0
    public var inputBytes = 0
    public var outputBytes = 0
    public var nanoseconds = 0
    public var failures = 0

    /// Zeros.
    public init() {}

    init(pclusters: Int, inputBytes: Int, outputBytes: Int, nanoseconds: Int, failures: Int) {
        self.pclusters = pclusters
        self.inputBytes = inputBytes
        self.outputBytes = outputBytes
        self.nanoseconds = nanoseconds
        self.failures = failures
    }

    /// Totals by algorithm (every algorithm, zeros for those never used).
    public static func snapshot() -> [CompressionAlgorithm: DecompressionStatistics] {
        var result: [CompressionAlgorithm: DecompressionStatistics] = [:]
        for algorithm in CompressionAlgorithm.allCases {
            let counters = algorithmCounters[Int(algorithm.rawValue)]
            result[algorithm] = DecompressionStatistics(
                pclusters: counters.pclusters.load(ordering: .relaxed),
                inputBytes: counters.inputBytes.load(ordering: .relaxed),
                outputBytes: counters.outputBytes.load(ordering: .relaxed),
                nanoseconds: counters.nanoseconds.load(ordering: .relaxed),
                failures: counters.failures.load(ordering: .relaxed))
        }
        return result
    }

    /// Times `decode` and counts it for `algorithm`.
    static func measure(
        _ algorithm: CompressionAlgorithm, input: Int, output: Int, _ decode: () throws -> Void
    ) throws {
        let counters = algorithmCounters[Int(algorithm.rawValue)]
        let started = ContinuousClock.now
        defer {
            let (seconds, attoseconds) = (ContinuousClock.now - started).components
            counters.nanoseconds.wrappingAdd(
                Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000), ordering: .relaxed)
        }
        do {
            try decode()
        } catch {
            counters.failures.wrappingAdd(1, ordering: .relaxed)
            throw error
        }
        counters.pclusters.wrappingAdd(1, ordering: .relaxed)
        counters.inputBytes.wrappingAdd(input, ordering: .relaxed)
        counters.outputBytes.wrappingAdd(output, ordering: .relaxed)
    }
}

/// One algorithm's counters (relaxed atomics: totals, no ordering needed).
private final class AlgorithmCounters: Sendable {
    let pclusters = Atomic<Int>(0)
    let inputBytes = Atomic<Int>(0)
    let outputBytes = Atomic<Int>(0)
    let nanoseconds = Atomic<Int>(0)
    let failures = Atomic<Int>(0)
}

/// Indexed by `CompressionAlgorithm.rawValue` (0...3).
private let algorithmCounters: [AlgorithmCounters] = CompressionAlgorithm.allCases.map { _ in AlgorithmCounters() }
