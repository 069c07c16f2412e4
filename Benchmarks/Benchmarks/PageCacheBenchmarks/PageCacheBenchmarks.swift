import Benchmark
import EROFS
import Foundation
import PageCache

/// An image of one 4 MiB file made by Debian's mkfs.erofs, attached to a cache that already holds it all.
private func warmCache() async throws -> (SharedPageCache, Inode) {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pageshare-cache-\(UUID())")
    try FileManager.default.createDirectory(at: directory.appendingPathComponent("src"), withIntermediateDirectories: true)
    let bytes = (0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
    try Data(bytes).write(to: directory.appendingPathComponent("src/file"))
    let path = directory.appendingPathComponent("cache.img").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/mkfs.erofs")
    process.arguments = ["--quiet", path, directory.appendingPathComponent("src").path]
    try process.run()
    process.waitUntilExit()
    let image = try Image(source: MemoryImageSource(Array(try Data(contentsOf: URL(fileURLWithPath: path)))))
    try? FileManager.default.removeItem(at: directory)
    let cache = try SharedPageCache(configuration: .init(budgetBytes: 64 << 20))
    try cache.attach(image, id: "bench", domain: try TrustDomain("bench"), mode: .none)
    let inode = try image.resolve("file")
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 4096)
    defer { buffer.deallocate() }
    _ = try await cache.read(imageID: "bench", inode: inode, at: 0, into: buffer)
    return (cache, inode)
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .mallocCountTotal, .throughput], maxDuration: .seconds(2))

    Benchmark("cache hit, 4 KiB page, 1 task") { benchmark, state in
        let (cache, inode) = state
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { buffer.deallocate() }
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            blackHole(try await cache.read(imageID: "bench", inode: inode, at: UInt64(index % 1024) << 12, into: buffer))
        }
    } setup: {
        try await warmCache()
    }

    Benchmark("cache hit, 4 KiB page, 8 tasks", configuration: .init(scalingFactor: .kilo)) { benchmark, state in
        let (cache, inode) = state
        let perTask = benchmark.scaledIterations.count / 8
        benchmark.startMeasurement()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
                    defer { buffer.deallocate() }
                    for index in 0..<perTask {
                        blackHole(
                            try await cache.read(
                                imageID: "bench", inode: inode, at: UInt64((index + task * 97) % 1024) << 12, into: buffer))
                    }
                }
            }
            try await group.waitForAll()
        }
    } setup: {
        try await warmCache()
    }
}
