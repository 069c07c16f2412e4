import EROFSTestSupport
import Foundation
import Testing

@testable import EROFS

/// Every algorithm the kernel reads (LZ4, MicroLZMA, DEFLATE, Zstandard), plain pclusters and fragments
/// (tail and whole file in the packed inode), on images built byte by byte since mkfs.erofs 1.5 makes only
/// LZ4 — compared with the source bytes and, as root, with the kernel.
@Suite("Synthetic compressed images")
struct SyntheticCompressionTests {
    typealias Node = SyntheticImage.Node

    static func contents() -> [(String, [UInt8], Node.Fragment)] {
        var mixed: [UInt8] = []
        var index = 0
        while mixed.count < 50_000 {
            mixed +=
                index % 5 == 2 ? TestTree.pattern(3000, seed: UInt64(index)) : Array("line \(index) of text\n".utf8)
            index += 1
        }
        let text = Array((0..<3000).map { "entry \($0 % 17)\n" }.joined().utf8)
        return [
            ("mixed", mixed, .none),
            ("tiny", Array("tiny compressible file, tiny compressible file\n".utf8), .none),
            ("exact-blocks", Array(text.prefix(8192)), .none),
            ("tail-fragment", text + Array("tail bytes".utf8), .tail),
            ("whole-fragment", Array(text.prefix(3000)), .wholeFile),
            ("random", TestTree.pattern(9000, seed: 77), .none),
        ]
    }

    static func image(_ algorithm: CompressionAlgorithm) -> SyntheticImage {
        let root = Node("", .directory)
        for (name, bytes, fragment) in Self.contents() {
            let node = Node(name, .regular(bytes))
            node.compression = algorithm
            node.fragment = fragment
            root.children.append(node)
        }
        root.children.append(Node("uncompressed", .regular(Array("plain file\n".utf8))))
        // Incompressible lclusters stored interlaced; a short file sharing (a prefix of) another's pcluster.
        let interlaced = Node("interlaced", .regular(TestTree.pattern(4096 * 2 + 700, seed: 5)))
        interlaced.compression = algorithm
        interlaced.interlacedPlain = true
        let source = root.children.first { $0.name == "exact-blocks" }!
        let deduplicated = Node("deduplicated", .regular(Array(Self.contents()[2].1.prefix(1500))))
        deduplicated.compression = algorithm
        deduplicated.sharesFirstPcluster = source
        root.children += [interlaced, deduplicated]
        return SyntheticImage(root: root)
    }

    /// Encoded extent records of every size (Linux 6.15+): byte-addressed pclusters packed back to back,
    /// plain and compressed extents, holes (all-zero lclusters) and a fragment tail.
    static func encodedExtentImage(_ algorithm: CompressionAlgorithm) -> SyntheticImage {
        let root = Node("", .directory)
        for size in [4, 8, 16, 32] {
            for fragment in [Node.Fragment.none, .tail] {
                let node = Node("records-\(size)\(fragment == .tail ? "-fragment" : "")", .regular(Self.encodedContent))
                node.compression = algorithm
                node.encodedExtentRecordSize = size
                node.fragment = fragment
                root.children.append(node)
            }
        }
        return SyntheticImage(root: root)
    }

    /// Text, an incompressible stretch, two all-zero lclusters (holes) and a short tail.
    static let encodedContent: [UInt8] = {
        let text = Array((0..<700).map { "encoded extent line \($0 % 31)\n" }.joined().utf8)
        return text + TestTree.pattern(6000, seed: 8)
            + [UInt8](repeating: 0, count: 8192 + 4096 - (text.count + 6000) % 4096)
            + text.prefix(5000)
    }()

    @Test(arguments: CompressionAlgorithm.allCases)
    func readsEncodedExtents(algorithm: CompressionAlgorithm) throws {
        let erofs = try Image(source: MemoryImageSource(Self.encodedExtentImage(algorithm).build()))
        let context = ReadContext()
        for size in [4, 8, 16, 32] {
            for suffix in ["", "-fragment"] {
                let inode = try erofs.resolve("records-\(size)\(suffix)")
                let content = Self.encodedContent
                #expect(try erofs.readBytes(inode, count: content.count) == content, "\(size)\(suffix)")
                var generator = SplitMix64(seed: UInt64(size))
                for _ in 0..<50 {
                    let offset = Int(generator.next() % UInt64(content.count))
                    let length = Int(generator.next() % 9000)
                    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(length, 1), alignment: 8)
                    defer { buffer.deallocate() }
                    let count = try erofs.read(
                        inode, at: UInt64(offset), into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length]),
                        context: context)
                    #expect(Array(buffer[0..<count]) == Array(content[offset..<min(content.count, offset + length)]))
                }
                let kinds = try erofs.extents(of: inode).map(\.kind)
                #expect(kinds.contains(.hole), "\(size)\(suffix): \(kinds)")
                #expect(kinds.contains(.encoded(algorithm.description, inline: false)))
                #expect((kinds.last == .fragment) == (suffix == "-fragment"))
            }
        }
    }

    @Test(
        "the kernel agrees on encoded extents", .enabled(if: KernelMount.isAvailable, "needs root and mount -t erofs"),
        arguments: CompressionAlgorithm.allCases)
    func kernelAgreesOnEncodedExtents(algorithm: CompressionAlgorithm) throws {
        try SyntheticImageTests.compareWithKernel(Self.encodedExtentImage(algorithm).build())
    }

    /// Two algorithms in one file: even lclusters HEAD1, odd ones HEAD2.
    static func twoAlgorithmImage() -> SyntheticImage {
        let root = Node("", .directory)
        let text = Array((0..<6000).map { "row \($0 % 23) of text\n" }.joined().utf8)
        let pairs: [(CompressionAlgorithm, CompressionAlgorithm)] = [(.lz4, .zstd), (.lzma, .deflate), (.zstd, .lz4)]
        for (first, second) in pairs {
            let node = Node("\(first)-\(second)", .regular(text))
            node.compression = first
            node.head2Compression = second
            root.children.append(node)
        }
        return SyntheticImage(root: root)
    }

    @Test func readsHead1AndHead2InOneFile() throws {
        let erofs = try Image(source: MemoryImageSource(Self.twoAlgorithmImage().build()))
        let text = Array((0..<6000).map { "row \($0 % 23) of text\n" }.joined().utf8)
        for name in ["lz4-zstd", "lzma-deflate", "zstd-lz4"] {
            let inode = try erofs.resolve(name)
            #expect(try erofs.readBytes(inode, count: text.count) == text, "\(name)")
            let kinds = Set(try erofs.extents(of: inode).map(\.kind.description))
            #expect(kinds.count == 2, "\(name): \(kinds)")
        }
    }

    @Test(
        "the kernel agrees on HEAD2", .enabled(if: KernelMount.isAvailable, "needs root and mount -t erofs"))
    func kernelAgreesOnHead2() throws {
        try SyntheticImageTests.compareWithKernel(Self.twoAlgorithmImage().build())
    }

    @Test(arguments: CompressionAlgorithm.allCases)
    func readsEveryFileExactly(algorithm: CompressionAlgorithm) throws {
        let erofs = try Image(source: MemoryImageSource(Self.image(algorithm).build()))
        #expect(erofs.compression.algorithms == [algorithm])
        let context = ReadContext()
        for (name, bytes, _) in Self.contents() {
            let inode = try erofs.resolve(name)
            #expect(inode.layout == .compressedFull)
            #expect(try erofs.readBytes(inode, count: bytes.count + 1) == bytes, "\(name)")
            // Every offset class: inside, across lcluster boundaries, in the fragment, at EOF.
            for offset in stride(from: 0, to: bytes.count, by: 997) {
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 5000, alignment: 8)
                defer { buffer.deallocate() }
                let count = try erofs.read(inode, at: UInt64(offset), into: buffer, context: context)
                #expect(
                    Array(buffer[0..<count]) == Array(bytes[offset..<min(bytes.count, offset + 5000)]),
                    "\(name)@\(offset)")
            }
        }
        let interlaced = try erofs.resolve("interlaced")
        #expect(try erofs.readBytes(interlaced, count: 9000) == TestTree.pattern(4096 * 2 + 700, seed: 5))
        #expect(try erofs.extents(of: interlaced).first?.kind == .encoded("plain (interlaced)", inline: false))
        let deduplicated = try erofs.resolve("deduplicated")
        #expect(try erofs.readBytes(deduplicated, count: 2000) == Array(Self.contents()[2].1.prefix(1500)))
        let extents = try erofs.extents(of: try erofs.resolve("tail-fragment"))
        #expect(extents.last?.kind == .fragment)
        #expect(try erofs.extents(of: try erofs.resolve("whole-fragment")).map(\.kind) == [.fragment])
    }

    @Test(
        "the kernel agrees", .enabled(if: KernelMount.isAvailable, "needs root and mount -t erofs"),
        arguments: CompressionAlgorithm.allCases)
    func kernelAgrees(algorithm: CompressionAlgorithm) throws {
        try SyntheticImageTests.compareWithKernel(Self.image(algorithm).build())
    }

    @Test func corruptStreamsFailOnlyTheirFile() throws {
        for algorithm in CompressionAlgorithm.allCases {
            var bytes = Self.image(algorithm).build()
            let pristine = try Image(source: MemoryImageSource(bytes))
            let mixed = try pristine.resolve("exact-blocks")
            #expect(try pristine.extents(of: mixed)[0].kind == .encoded(algorithm.description, inline: false))
            // Break the start of the first pcluster's stream (after its zero padding): no codec accepts 0xFF
            // there. (Damage deeper in a stream is not always detectable: LZ4 and DEFLATE carry no checksum.)
            let block = try #require(try Self.firstPclusterOffset(pristine, mixed))
            var start = block
            while bytes[start] == 0 { start += 1 }
            for index in start..<min(start + 16, block + 4096) { bytes[index] = 0xFF }
            let broken = try Image(source: MemoryImageSource(bytes))
            let error = try #require(throws: EROFSError.self, "\(algorithm)") {
                try broken.readBytes(try broken.resolve("exact-blocks"), count: 4096)
            }
            #expect(error.code == .corrupted, "\(algorithm): \(error)")
            #expect(
                try broken.readBytes(try broken.resolve("uncompressed"), count: 100) == Array("plain file\n".utf8))
        }
    }

    /// Byte offset of `inode`'s first pcluster.
    static func firstPclusterOffset(_ image: Image, _ inode: Inode) throws -> Int? {
        let info = try image.compressionInfo(of: inode)
        guard case .blocks(let offset, _) = try image.compressedExtent(of: inode, info: info, containing: 0).storage
        else { return nil }
        return Int(offset)
    }
}
