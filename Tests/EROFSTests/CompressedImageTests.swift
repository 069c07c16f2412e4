import EROFS
import EROFSTestSupport
import Foundation
import Testing

/// Compressed images Debian's mkfs.erofs 1.5 makes (LZ4 and LZ4HC; compact and legacy full indexes; big
/// pclusters; ztailpacking; incompressible data stored as plain pclusters) read exactly as the kernel and
/// fsck.erofs read them.
@Suite("Compressed images from mkfs.erofs")
struct CompressedImageTests {
    static let layouts: [[String]] = [
        ["-zlz4"],
        ["-zlz4hc,9"],
        ["-zlz4", "-Elegacy-compress"],
        ["-zlz4hc", "-C65536"],
        ["-zlz4hc,12", "-C16384", "-Eztailpacking"],
        ["-zlz4", "-Eztailpacking"],
        ["-zlz4hc", "-C131072", "-Eforce-inode-extended"],
    ]

    @Test("reader matches fsck.erofs --extract", arguments: layouts)
    func readerMatchesFsck(options: [String]) throws {
        let image = try TestImage.full(options: options, largeFileBytes: 700_000)
        defer { image.remove() }
        let problems = try image.readerVersusFsck()
        #expect(problems.isEmpty, "\(problems.prefix(20).joined(separator: "\n"))")
        #expect(try image.open().resolve("compressible.txt").layout.isCompressed)
    }

    @Test(
        "reader matches the kernel mount", .enabled(if: KernelMount.isAvailable, "needs root and mount -t erofs"),
        arguments: layouts)
    func readerMatchesKernel(options: [String]) throws {
        let image = try TestImage.full(options: options, largeFileBytes: 700_000)
        defer { image.remove() }
        let problems = try image.readerVersusKernel()
        #expect(problems.isEmpty, "\(problems.prefix(20).joined(separator: "\n"))")
    }

    /// Ranges crossing extent and pcluster boundaries, zero-length and past-EOF ranges, read with and without
    /// a shared context, against the source bytes.
    @Test(arguments: [["-zlz4hc", "-C65536"], ["-zlz4", "-Eztailpacking"], ["-zlz4", "-Elegacy-compress"]])
    func randomRangesEqualTheSource(options: [String]) throws {
        let image = try TestImage(options: options) { root in
            try TestTree.write(root + "/mixed", Self.mixedContent(900_000))
            try TestTree.write(
                root + "/text", Array((0..<9000).map { "line \($0 % 101) of plain text\n" }.joined().utf8))
            try TestTree.write(root + "/small", Array("short text, short text, short text\n".utf8))
        }
        defer { image.remove() }
        let erofs = try image.open()
        let context = ReadContext()
        var generator = SplitMix64(seed: 99)
        #expect(try erofs.resolve("text").layout.isCompressed)
        for name in ["mixed", "text", "small"] {
            let inode = try erofs.resolve(name)
            let expected = Array(try Data(contentsOf: URL(fileURLWithPath: image.source + "/" + name)))
            for _ in 0..<300 {
                let offset = Int(generator.next() % UInt64(expected.count + 3))
                let length = Int(generator.next() % 150_000)
                let end = min(expected.count, offset + length)
                let want = offset < expected.count ? Array(expected[offset..<end]) : []
                #expect(try erofs.readBytes(inode, at: UInt64(offset), count: length) == want, "\(name) @\(offset)")
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(length, 1), alignment: 8)
                defer { buffer.deallocate() }
                let count = try erofs.read(
                    inode, at: UInt64(offset), into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length]),
                    context: context)
                #expect(Array(buffer[0..<count]) == want, "\(name) @\(offset) with context")
            }
        }
    }

    /// Regression: a big-pcluster head followed by another head lcluster (files of one to a few blocks).
    /// Found on /usr/share by bench/extract.sh: the pcluster address was taken after the next lcluster loaded.
    @Test(arguments: [["-zlz4hc", "-C65536"], ["-zlz4hc", "-C16384", "-Eztailpacking"], ["-zlz4", "-C8192"]])
    func smallFilesWithBigPclusters(options: [String]) throws {
        let sizes = [100, 4095, 4097, 5000, 6934, 8191, 8192, 8193, 12_000, 20_000, 70_000]
        let image = try TestImage(options: options) { root in
            for size in sizes {
                let text = (0..<(size / 20 + 1)).map { "entry \($0 % 13) = \($0 % 7)\n" }.joined()
                try TestTree.write(root + "/file-\(size)", Array(text.utf8.prefix(size)))
            }
        }
        defer { image.remove() }
        let erofs = try image.open()
        for size in sizes {
            let inode = try erofs.resolve("file-\(size)")
            let expected = Array(try Data(contentsOf: URL(fileURLWithPath: image.source + "/file-\(size)")))
            #expect(try erofs.readBytes(inode, count: size + 10) == expected, "file-\(size) \(inode.layout)")
        }
    }

    @Test(
        "ranges equal the kernel's", .enabled(if: KernelMount.isAvailable, "needs root and mount -t erofs"),
        arguments: [["-zlz4hc", "-C65536"], ["-zlz4", "-Eztailpacking"]])
    func rangesEqualTheKernel(options: [String]) throws {
        let image = try TestImage(options: options) { root in
            try TestTree.write(root + "/mixed", Self.mixedContent(600_000))
        }
        defer { image.remove() }
        let erofs = try image.open()
        let inode = try erofs.resolve("mixed")
        let context = ReadContext()
        try KernelMount.withMount(image.path) { mountPoint in
            let handle = try #require(FileHandle(forReadingAtPath: mountPoint + "/mixed"))
            defer { try? handle.close() }
            var generator = SplitMix64(seed: 3)
            for _ in 0..<400 {
                let offset = generator.next() % 600_010
                let length = Int(generator.next() % 70_000)
                try handle.seek(toOffset: offset)
                let kernel = Array(try handle.read(upToCount: length) ?? Data())
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(length, 1), alignment: 8)
                defer { buffer.deallocate() }
                let count = try erofs.read(
                    inode, at: offset, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length]),
                    context: context)
                #expect(Array(buffer[0..<count]) == kernel, "@\(offset) +\(length)")
            }
        }
    }

    /// Two images with the same layout (same nids) but different bytes, read through one context.
    @Test func aContextSharedByImagesNeverMixesThem() throws {
        let images = try ["first", "second"].map { word in
            try TestImage(options: ["-zlz4hc"]) { root in
                try TestTree.write(
                    root + "/text", Array((0..<4000).map { "\(word) line \($0 % 50)\n" }.joined().utf8))
            }
        }
        defer { images.forEach { $0.remove() } }
        let opened = try images.map { try $0.open() }
        let inodes = try opened.map { try $0.resolve("text") }
        #expect(inodes[0].nid == inodes[1].nid)
        let context = ReadContext()
        for round in 0..<6 {
            let index = round % 2
            let expected = Array(try Data(contentsOf: URL(fileURLWithPath: images[index].source + "/text")))
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 3000, alignment: 8)
            defer { buffer.deallocate() }
            let count = try opened[index].read(inodes[index], at: 100, into: buffer, context: context)
            #expect(Array(buffer[0..<count]) == Array(expected[100..<3100]), "image \(index)")
        }
    }

    /// Compressible text with incompressible stretches, so files mix compressed and plain pclusters.
    static func mixedContent(_ count: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = 0
        while bytes.count < count {
            if index % 7 == 3 {
                bytes += TestTree.pattern(5000, seed: UInt64(index))
            } else {
                bytes += Array("record \(index): the quick brown fox jumps over the lazy dog\n".utf8)
            }
            index += 1
        }
        return Array(bytes[0..<count])
    }
}
