import Benchmark
import EROFS
import Foundation

/// Builds a benchmark image with Debian's mkfs.erofs: a 3000-entry directory, a 4 MiB plain file and a
/// 4 MiB compressible file (compressed when `options` asks for it).
private func makeImage(_ options: [String]) throws -> ImageBox {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pageshare-bench-\(UUID())")
    let source = directory.appendingPathComponent("src")
    try FileManager.default.createDirectory(
        at: source.appendingPathComponent("many"), withIntermediateDirectories: true)
    for index in 0..<3000 {
        try Data("\(index)\n".utf8).write(to: source.appendingPathComponent("many/entry-\(index)"))
    }
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    let random = (0..<(4 << 20)).map { _ -> UInt8 in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
    try Data(random).write(to: source.appendingPathComponent("plain.bin"))
    let text = (0..<120_000).map { "line \($0 % 1000) of a compressible file\n" }.joined()
    try Data(text.utf8).write(to: source.appendingPathComponent("text.txt"))
    let image = directory.appendingPathComponent("bench.img").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/mkfs.erofs")
    process.arguments = ["--quiet"] + options + [image, source.path]
    try process.run()
    process.waitUntilExit()
    let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: image)))
    try? FileManager.default.removeItem(at: directory)
    return try ImageBox(MemoryImageSource(bytes))
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .mallocCountTotal, .instructions], maxDuration: .seconds(2))

    Benchmark("open image (superblock only)") { benchmark, image in
        for _ in benchmark.scaledIterations {
            blackHole(try Image(source: image.source))
        }
    } setup: {
        try makeImage([])
    }

    Benchmark("lookup in a 3000-entry directory") { benchmark, image in
        for index in benchmark.scaledIterations {
            blackHole(try image.image.resolve("many/entry-\(index % 3000)"))
        }
    } setup: {
        try makeImage([])
    }

    Benchmark("read 1 MiB, uncompressed", configuration: .init(scalingFactor: .one)) { benchmark, box in
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        let inode = try box.image.resolve("plain.bin")
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            blackHole(try box.image.read(inode, at: UInt64(index % 4) << 20, into: buffer))
        }
    } setup: {
        try makeImage([])
    }

    Benchmark("read 1 MiB, lz4hc 64 KiB pclusters", configuration: .init(scalingFactor: .one)) { benchmark, box in
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        let context = ReadContext()
        let inode = try box.image.resolve("text.txt")
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            blackHole(try box.image.read(inode, at: UInt64(index % 4) << 20, into: buffer, context: context))
        }
    } setup: {
        try makeImage(["-zlz4hc", "-C65536"])
    }
}

/// Carries an image from `setup` into the measured closure.
final class ImageBox: Sendable {
    let source: MemoryImageSource
    let image: Image
    init(_ source: MemoryImageSource) throws {
        self.source = source
        self.image = try Image(source: source)
    }
}
