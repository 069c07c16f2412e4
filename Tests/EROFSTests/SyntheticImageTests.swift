import EROFS
import EROFSTestSupport
import Foundation
import Testing

/// Format features mkfs.erofs 1.5 cannot produce, on images built byte by byte (``SyntheticImage``), read
/// by PageShare and, where the kernel can mount them, compared with the kernel.
@Suite("Synthetic images")
struct SyntheticImageTests {
    typealias Node = SyntheticImage.Node
    static let fingerprint = Array((0..<32).map { UInt8($0 * 7 & 0xFF) })

    static func makeTree(blockSize: Int) -> SyntheticImage {
        let plain = Node("plain", .regular(TestTree.pattern(3 * blockSize + 100, seed: 1)))
        let inline = Node("inline", .regular(TestTree.pattern(blockSize + 10, seed: 2)))
        inline.placement = .inlineTail
        let nlinkOne = Node("nlink-one", .regular(TestTree.pattern(blockSize / 2, seed: 3)))
        nlinkOne.nlinkOneBit = true
        nlinkOne.permissions = 0o4711
        let straddling = Node("straddling", .regular(Array("extended record across a block boundary\n".utf8)))
        straddling.extended = true
        straddling.straddleBlockBoundary = true
        straddling.uid = 100_000
        straddling.mtime = 2_000_000_000
        straddling.mtimeNanoseconds = 123_456_789
        straddling.xattrs = [.init(nameIndex: 1, suffix: "after.boundary", value: Array("x".utf8))]
        let xattrs = Node("xattrs", .regular(Array("xattrs\n".utf8)))
        xattrs.xattrs = [
            .init(nameIndex: 0x81, suffix: "name", value: Array("long prefix value".utf8)),
            .init(nameIndex: 6, suffix: "selinux", value: Array("system_u:object_r:etc_t:s0\0".utf8)),
        ]
        xattrs.sharedXattrIDs = [0]
        let fingerprinted = Node("fingerprinted", .regular(Array("same content\n".utf8)))
        fingerprinted.xattrs = [.init(nameIndex: 0x80, suffix: "", value: fingerprint)]
        let shortName = Node("fingerprint-short-name", .regular(Array("same content\n".utf8)))
        shortName.xattrs = [.init(nameIndex: 4, suffix: "erofs.fingerprint", value: fingerprint)]
        let symlink = Node("up", .symlink("../plain"))
        let sub = Node("sub", .directory).adding(symlink)
        sub.sharedXattrIDs = [0]
        let root = Node("", .directory).adding(
            plain, inline, nlinkOne, straddling, xattrs, fingerprinted, shortName, sub)
        var image = SyntheticImage(root: root)
        image.blockSizeBits = blockSize.trailingZeroBitCount
        image.longPrefixes = [(4, "erofs.fingerprint"), (1, "pageshare.long.")]
        image.ishareXattrPrefixID = 0
        image.sharedXattrs = [.init(nameIndex: 1, suffix: "shared", value: Array("shared by two inodes".utf8))]
        return image
    }

    static func check(_ erofs: Image, blockSize: Int) throws {
        #expect(erofs.superBlock.blockSize == blockSize)
        #expect(
            try erofs.readBytes(try erofs.resolve("plain"), count: 1 << 20)
                == TestTree.pattern(3 * blockSize + 100, seed: 1))
        let inline = try erofs.resolve("inline")
        #expect(inline.layout == .flatInline)
        #expect(try erofs.readBytes(inline, count: 1 << 20) == TestTree.pattern(blockSize + 10, seed: 2))
        let nlinkOne = try erofs.resolve("nlink-one")
        #expect(nlinkOne.linkCount == 1)
        #expect(nlinkOne.permissions == 0o4711)
        #expect(try erofs.readBytes(nlinkOne, count: 1 << 20) == TestTree.pattern(blockSize / 2, seed: 3))
        let straddling = try erofs.resolve("straddling")
        #expect(straddling.isExtended)
        #expect(straddling.uid == 100_000)
        #expect(straddling.mtime == 2_000_000_000 && straddling.mtimeNanoseconds == 123_456_789)
        #expect(try erofs.xattrs(of: straddling).map(\.nameString) == ["user.after.boundary"])
        let xattrs = try erofs.xattrs(of: try erofs.resolve("xattrs"))
        #expect(xattrs.map(\.nameString) == ["user.pageshare.long.name", "security.selinux", "user.shared"])
        #expect(xattrs[0].value == Array("long prefix value".utf8))
        #expect(xattrs[2].value == Array("shared by two inodes".utf8))
        #expect(try erofs.xattrs(of: try erofs.resolve("sub")).map(\.nameString) == ["user.shared"])
        // The fingerprint is the value of the xattr named by the ishare prefix, however its name is stored.
        #expect(try erofs.resolve("fingerprinted").fingerprint == fingerprint)
        #expect(try erofs.resolve("fingerprint-short-name").fingerprint == fingerprint)
        #expect(try erofs.resolve("plain").fingerprint == nil)
        #expect(try erofs.resolve("sub/up").nid == erofs.resolve("plain").nid)
        #expect(erofs.superBlock.ishareXattrPrefixID == 0)
        #expect(erofs.superBlock.compatFeatures.contains(.ishareXattrs))
    }

    @Test(arguments: [512, 4096, 65536])
    func readsEveryFeatureAtEveryBlockSize(blockSize: Int) throws {
        let bytes = Self.makeTree(blockSize: blockSize).build()
        let erofs = try Image(source: MemoryImageSource(bytes))
        try Self.check(erofs, blockSize: blockSize)
        #expect(try erofs.check().inodes == 10)
    }

    @Test(
        "the kernel agrees", .enabled(if: KernelMount.isAvailable, "needs root and mount -t erofs"),
        arguments: [512, 4096])
    func kernelAgrees(blockSize: Int) throws {
        try Self.compareWithKernel(Self.makeTree(blockSize: blockSize).build())
    }

    static func metaboxTree() -> SyntheticImage {
        var image = Self.makeTree(blockSize: 4096)
        let boxed = Node("boxed", .regular(TestTree.pattern(5000, seed: 11)))
        boxed.inMetabox = true
        let boxedInline = Node("boxed-inline", .regular(Array("inline data inside the metabox\n".utf8)))
        boxedInline.inMetabox = true
        boxedInline.placement = .inlineTail
        boxedInline.sharedXattrIDs = [0]
        let boxedDirectory = Node("boxed-dir", .directory).adding(Node("inner", .symlink("../boxed")))
        boxedDirectory.inMetabox = true
        boxedDirectory.extended = true
        image.root.children += [boxed, boxedInline, boxedDirectory]
        image.sharedXattrsInMetabox = true
        image.use48BitRootNid = true
        return image
    }

    @Test func readsMetaboxInodesAndSharedXattrsInTheMetabox() throws {
        let erofs = try Image(source: MemoryImageSource(Self.metaboxTree().build()))
        #expect(erofs.superBlock.incompatFeatures.contains(.metabox))
        #expect(erofs.superBlock.incompatFeatures.contains(.blockAddress48))
        #expect(erofs.superBlock.rootNid == 2)
        try Self.check(erofs, blockSize: 4096)
        let boxed = try erofs.resolve("boxed")
        #expect(boxed.nid >> 63 == 1)
        #expect(try erofs.readBytes(boxed, count: 1 << 20) == TestTree.pattern(5000, seed: 11))
        let inline = try erofs.resolve("boxed-inline")
        #expect(try erofs.readBytes(inline, count: 100) == Array("inline data inside the metabox\n".utf8))
        #expect(try erofs.xattrs(of: inline).map(\.nameString) == ["user.shared"])
        #expect(try erofs.resolve("boxed-dir/inner").nid == boxed.nid)
    }

    @Test func readsPlainPrefixesBesideAMetabox() throws {
        var image = Self.metaboxTree()
        image.plainXattrPrefixes = true
        let erofs = try Image(source: MemoryImageSource(image.build()))
        try Self.check(erofs, blockSize: 4096)
    }

    @Test(
        "the kernel agrees on metabox", .enabled(if: KernelMount.isAvailable, "needs root and mount -t erofs"),
        arguments: [false, true])
    func kernelAgreesOnMetabox(plainPrefixes: Bool) throws {
        var image = Self.metaboxTree()
        image.plainXattrPrefixes = plainPrefixes
        try Self.compareWithKernel(image.build())
    }

    @Test func metaboxNidWithoutMetaboxIsCorrupt() throws {
        var image = Self.makeTree(blockSize: 4096)
        image.plainXattrPrefixes = true
        let boxed = Node("boxed", .regular(Array("x".utf8)))
        boxed.inMetabox = true
        image.root.children.append(boxed)
        var bytes = image.build()
        bytes[1024 + 0x51] &= ~0x01  // clear METABOX: the dirent's nid bit 63 now points nowhere
        let erofs = try Image(source: MemoryImageSource(bytes))
        #expect(throws: EROFSError(.corrupted, "")) { try erofs.resolve("boxed") }
    }

    static func compareWithKernel(_ bytes: [UInt8]) throws {
        let directory = try TemporaryDirectory("synthetic")
        defer { directory.remove() }
        let path = directory.path + "/synthetic.img"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let ours = try snapshotImage(try Image(path: path))
        let kernel = try KernelMount.withMount(path) { try snapshotHostTree($0) }
        let problems = compareTrees(ours, kernel)
        #expect(problems.isEmpty, "\(problems.prefix(20).joined(separator: "\n"))")
    }
}

/// Seeds for `make fuzz`: the synthetic images reach format paths mkfs.erofs 1.5 images do not.
@Test(
    "write synthetic fuzz seeds",
    .enabled(if: ProcessInfo.processInfo.environment["PAGESHARE_FUZZ_SEEDS"] != nil, "only for make fuzz"))
func writeSyntheticFuzzSeeds() throws {
    let directory = try #require(ProcessInfo.processInfo.environment["PAGESHARE_FUZZ_SEEDS"])
    var images = [
        ("synthetic-512", SyntheticImageTests.makeTree(blockSize: 512)),
        ("synthetic-4k", SyntheticImageTests.makeTree(blockSize: 4096)),
        ("synthetic-metabox", SyntheticImageTests.metaboxTree()),
    ]
    var plain = SyntheticImageTests.metaboxTree()
    plain.plainXattrPrefixes = true
    images.append(("synthetic-metabox-plain-prefixes", plain))
    for algorithm in CompressionAlgorithm.allCases {
        images.append(("synthetic-\(algorithm)", SyntheticCompressionTests.image(algorithm)))
    }
    images.append(("synthetic-head2", SyntheticCompressionTests.twoAlgorithmImage()))
    images.append(("synthetic-encoded-extents", SyntheticCompressionTests.encodedExtentImage(.lz4)))
    for (name, image) in images {
        try Data(image.build()).write(to: URL(fileURLWithPath: "\(directory)/\(name).img"))
    }
}

/// `bench/extract.sh` uses this to build a Zstandard (or LZMA, DEFLATE) image of a directory, which
/// mkfs.erofs 1.5 cannot write: PAGESHARE_BENCH_SOURCE, PAGESHARE_BENCH_IMAGE, PAGESHARE_BENCH_ALGORITHM.
@Test(
    "write a synthetic benchmark image",
    .enabled(if: ProcessInfo.processInfo.environment["PAGESHARE_BENCH_IMAGE"] != nil, "only for bench/extract.sh"))
func writeSyntheticBenchmarkImage() throws {
    let environment = ProcessInfo.processInfo.environment
    let output = try #require(environment["PAGESHARE_BENCH_IMAGE"])
    let source = try #require(environment["PAGESHARE_BENCH_SOURCE"])
    let name = environment["PAGESHARE_BENCH_ALGORITHM"] ?? "zstd"
    let algorithm = try #require(CompressionAlgorithm.allCases.first { $0.description == name })
    let image = try SyntheticImage.tree(fromDirectory: source, compressing: algorithm)
    try Data(image.build()).write(to: URL(fileURLWithPath: output))
}
