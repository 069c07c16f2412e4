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

    /// A dirent patched to `../../evil-x-xxx` (superblock checksum re-sealed) in `a/b`: extract fails with
    /// the reader's corruption error and creates nothing outside its target.
    @Test func aDirentNamedAboveTheTargetCreatesNothingOutsideIt() throws {
        let image = try TestImage(options: []) { root in
            try TestTree.write(root + "/a/b/aa-placeholder-x", Array("evil\n".utf8), makingParent: true)
            try TestTree.write(root + "/a/b/other", [4])
        }
        defer { image.remove() }
        let patched = try #require(
            ImagePatch.replacing(
                Array("aa-placeholder-x".utf8), with: Array("../../evil-x-xxx".utf8), in: try image.bytes()))
        let patchedPath = image.directory.path + "/patched.img"
        try TestTree.write(patchedPath, patched)
        let work = image.directory.path + "/work"
        try TestTree.make(work)
        let result = try PageShareBinary.run(["extract", patchedPath, work + "/out"])
        #expect(result.status != 0)
        #expect(result.error.contains("corrupt image: /a/b: ") && result.error.contains("nid"), "\(result.error)")
        #expect(access(work + "/evil-x-xxx", F_OK) != 0 && access(image.directory.path + "/evil-x-xxx", F_OK) != 0)
        #expect(access(work + "/out/a/evil-x-xxx", F_OK) != 0)
    }
}
