import EROFS
import EROFSTestSupport
import Glibc
import Testing

@Suite("pageshare extract")
struct ExtractCommandTests {
    static let layouts: [[String]] = [
        [], ["--chunksize=4096"], ["-Eforce-inode-extended", "-Enoinline_data"], ["-zlz4hc", "-C65536"],
        ["-zlz4", "-Eztailpacking"],
    ]

    @Test(
        "extract matches the kernel mount", .enabled(if: KernelMount.isAvailable, "needs root and mount -t erofs"),
        arguments: layouts)
    func matchesTheKernel(options: [String]) throws {
        let image = try TestImage.full(options: options)
        defer { image.remove() }
        let output = image.directory.path + "/out"
        let result = try PageShareBinary.run(["extract", image.path, output])
        #expect(result.status == 0, "\(result.error)")
        let extracted = try snapshotHostTree(output)
        let kernel = try KernelMount.withMount(image.path) { try snapshotHostTree($0) }
        // Everything is compared, hard links (nlink) and xattrs included; only the root's own attributes are
        // the host's (the destination directory already existed).
        var problems = compareTrees(extracted.filter { !$0.key.isEmpty }, kernel.filter { !$0.key.isEmpty })
        problems += differences(extracted[""]!, kernel[""]!, ignoring: []).map { "root: \($0)" }
        #expect(problems.isEmpty, "\(problems.prefix(20).joined(separator: "\n"))")
    }

    @Test("extract matches fsck.erofs --extract", arguments: layouts)
    func matchesFsck(options: [String]) throws {
        let image = try TestImage.full(options: options)
        defer { image.remove() }
        let ours = image.directory.path + "/ours"
        let theirs = image.directory.path + "/theirs"
        let result = try PageShareBinary.run(["extract", image.path, ours])
        #expect(result.status == 0, "\(result.error)")
        try ErofsUtils.fsckExtract(image.path, to: theirs)
        let problems = fsckComparableProblems(try snapshotHostTree(ours), try snapshotHostTree(theirs))
        #expect(problems.isEmpty, "\(problems.prefix(20).joined(separator: "\n"))")
    }

    @Test func neverOverwritesExistingFiles() throws {
        let image = try TestImage.full(options: [])
        defer { image.remove() }
        let output = image.directory.path + "/out"
        try TestTree.make(output)
        try TestTree.write(output + "/hello.txt", Array("mine".utf8))
        let result = try PageShareBinary.run(["extract", image.path, output])
        #expect(result.status != 0)
        #expect(result.error.contains("hello.txt"))
        #expect(try snapshotHostTree(output)["hello.txt"]?.content == Array("mine".utf8))
    }
}
