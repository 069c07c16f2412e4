import Benchmark
import EROFS
import Foundation
import PageCache

#if canImport(Glibc)
    import Glibc
#endif

/// An image of one file of `bytes` bytes made by Debian's mkfs.erofs, in memory.
private func imageOfOneFile(bytes count: Int) throws -> Image {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pageshare-cache-\(UUID())")
    try FileManager.default.createDirectory(at: directory.appendingPathComponent("src"), withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
    try Data(bytes).write(to: directory.appendingPathComponent("src/file"))
    let path = directory.appendingPathComponent("cache.img").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/mkfs.erofs")
    process.arguments = ["--quiet", path, directory.appendingPathComponent("src").path]
    try process.run()
    process.waitUntilExit()
    return try Image(source: MemoryImageSource(Array(try Data(contentsOf: URL(fileURLWithPath: path)))))
}

/// Resident bytes of this process (`/proc/self/statm`).
private func residentBytes() -> Int {
    let fields = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8))?.split(separator: " ") ?? []
    return (fields.count > 1 ? Int(fields[1]) ?? 0 : 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// An image of one 4 MiB file made by Debian's mkfs.erofs, attached to a cache that already holds it all.
private func warmCache() async throws -> (SharedPageCache, Inode) {
    let image = try imageOfOneFile(bytes: 4 << 20)
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

    // The cache's bookkeeping beside the page data, measured as resident memory: a 64 MiB budget of 4 KiB
    // pages filled by reading a 64 MiB file; the resident page data (the arena's written pages) is subtracted.
    Benchmark(
        "cache metadata per 4 KiB page, 64 MiB budget filled",
        configuration: .init(
            metrics: [.custom("metadata bytes per page", useScalingFactor: false)], maxDuration: .seconds(30),
            maxIterations: 3)
    ) { benchmark, image in
        let budget = 64 << 20
        let before = residentBytes()
        let cache = try SharedPageCache(configuration: .init(budgetBytes: budget, readaheadPages: 0))
        try cache.attach(image, id: "bench", domain: try TrustDomain("bench"), mode: .none)
        let inode = try image.resolve("file")
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        var offset: UInt64 = 0
        while offset < inode.size {
            offset += UInt64(try await cache.read(imageID: "bench", inode: inode, at: offset, into: buffer))
        }
        buffer.deallocate()
        let pages = cache.residentBytes / 4096
        let metadata = residentBytes() - before - pages * 4096
        benchmark.measurement(.custom("metadata bytes per page", useScalingFactor: false), metadata / max(1, pages))
        blackHole(cache)
    } setup: {
        try imageOfOneFile(bytes: 64 << 20)
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
