import EROFS
import EROFSTestSupport
import Glibc
import Testing

/// The reader must see exactly the tree the kernel and fsck.erofs see, for every uncompressed layout
/// Debian's mkfs.erofs 1.5 can produce.
@Suite("Reader versus kernel mount and fsck.erofs")
struct KernelAndFsckOracleTests {
    static let layouts: [[String]] = [
        [],
        // Compact inodes have 16-bit owners: the tree's uid 70000 needs --all-root here.
        ["-Eforce-inode-compact", "--all-root"],
        ["-Eforce-inode-extended"],
        ["-Enoinline_data"],
        ["--chunksize=4096"],
        ["--chunksize=65536"],
        ["--chunksize=8192", "-Eforce-chunk-indexes"],
        ["--chunksize=4096", "-Eforce-inode-blockmap"],
        ["-T0", "--all-root"],
        ["--force-uid=4000000000", "--force-gid=7"],
        ["-x", "-1"],
        ["-Enosbcrc"],
    ]

    @Test("reader matches fsck.erofs --extract", arguments: layouts)
    func readerMatchesFsck(options: [String]) throws {
        let image = try TestImage.full(options: options)
        defer { image.remove() }
        let problems = try image.readerVersusFsck()
        #expect(problems.isEmpty, "\(problems.prefix(20).joined(separator: "\n"))")
        #expect(try snapshotImage(try image.open()).count > 3000)
    }

    @Test(
        "reader matches the kernel mount", .enabled(if: KernelMount.isAvailable, "needs root and mount -t erofs"),
        arguments: layouts)
    func readerMatchesKernel(options: [String]) throws {
        let image = try TestImage.full(options: options)
        defer { image.remove() }
        let problems = try image.readerVersusKernel()
        #expect(problems.isEmpty, "\(problems.prefix(20).joined(separator: "\n"))")
    }

    @Test("reader matches the source tree's contents and names")
    func readerMatchesSource() throws {
        let image = try TestImage.full(options: ["--preserve-mtime"])
        defer { image.remove() }
        let ours = try snapshotImage(try image.open())
        let source = try snapshotHostTree(image.source)
        // Directory root attributes and link counts of the source are host facts; contents, names, types,
        // modes, targets and xattrs must be carried over exactly.
        let problems = compareTrees(ours, source, ignoring: ["mtime", "mtimeNanoseconds"])
        #expect(problems.isEmpty, "\(problems.prefix(20).joined(separator: "\n"))")
    }
}
