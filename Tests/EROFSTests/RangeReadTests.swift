import EROFS
import EROFSTestSupport
import Foundation
import Testing

@Suite("Range reads")
struct RangeReadTests {
    static let layouts: [[String]] = [
        [], ["-Enoinline_data"], ["--chunksize=4096"], ["--chunksize=16384", "-Eforce-chunk-indexes"],
    ]

    /// Many offsets and lengths, including ranges crossing block, chunk and inline-tail boundaries and
    /// zero-length and past-EOF ranges, against the bytes mkfs was given.
    @Test(arguments: layouts)
    func randomRangesEqualTheSourceBytes(options: [String]) throws {
        let image = try TestImage.full(options: options, largeFileBytes: 1_000_003)
        defer { image.remove() }
        let erofs = try image.open()
        var generator = SplitMix64(seed: 42)
        for name in ["large.bin", "tail.bin", "block4k", "block4k-plus1", "one", "empty", "hello.txt"] {
            let inode = try erofs.resolve(name)
            let expected = Array(try Data(contentsOf: URL(fileURLWithPath: image.source + "/" + name)))
            let size = expected.count
            var cases: [(Int, Int)] = [(0, 0), (0, size), (size, 10), (size + 5, 1), (max(size - 1, 0), 10)]
            for boundary in stride(from: 4096, to: size, by: 4096) {
                cases.append((boundary - 1, 2))
                cases.append((boundary - 100, 8192))
            }
            for _ in 0..<200 {
                let offset = Int(generator.next() % UInt64(size + 2))
                let length = Int(generator.next() % UInt64(min(size + 1, 70_000) + 1))
                cases.append((offset, length))
            }
            for (offset, length) in cases {
                let got = try erofs.readBytes(inode, at: UInt64(offset), count: length)
                let end = min(size, offset + length)
                let want = offset < size ? Array(expected[offset..<end]) : []
                #expect(got == want, "\(name) [\(offset), +\(length))")
            }
        }
    }

    @Test("ranges equal the kernel's", .enabled(if: KernelMount.isAvailable, "needs root and mount -t erofs"))
    func rangesEqualTheKernel() throws {
        let image = try TestImage.full(options: ["--chunksize=8192"], largeFileBytes: 500_001)
        defer { image.remove() }
        let erofs = try image.open()
        try KernelMount.withMount(image.path) { mountPoint in
            let inode = try erofs.resolve("large.bin")
            let handle = try #require(FileHandle(forReadingAtPath: mountPoint + "/large.bin"))
            defer { try? handle.close() }
            var generator = SplitMix64(seed: 7)
            for _ in 0..<500 {
                let offset = generator.next() % 500_010
                let length = Int(generator.next() % 40_000)
                try handle.seek(toOffset: offset)
                let kernel = Array(try handle.read(upToCount: length) ?? Data())
                #expect(try erofs.readBytes(inode, at: offset, count: length) == kernel)
            }
        }
    }

    @Test func readIntoCallerBufferReturnsCount() throws {
        let image = try TestImage.full(options: [])
        defer { image.remove() }
        let erofs = try image.open()
        let inode = try erofs.resolve("hello.txt")
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        #expect(try erofs.read(inode, at: 0, into: buffer) == 17)
        #expect(try erofs.read(inode, at: 7, into: buffer) == 10)
        #expect(try erofs.read(inode, at: 17, into: buffer) == 0)
        #expect(try erofs.read(inode, at: UInt64.max, into: buffer) == 0)
    }
}

/// A small deterministic generator so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { self.state = seed }
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var value = self.state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
