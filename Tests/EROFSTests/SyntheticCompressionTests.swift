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
        return SyntheticImage(root: root)
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
