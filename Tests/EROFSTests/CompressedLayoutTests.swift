import EROFS
import EROFSTestSupport
import Testing

/// Until compressed layouts are implemented (issue #3), compressed inodes must fail with `unsupported`
/// naming the layout, and everything else in the image must still read correctly.
@Suite("Compressed images before compression support")
struct CompressedLayoutTests {
    @Test(arguments: [["-zlz4"], ["-zlz4hc,9"], ["-zlz4", "-Elegacy-compress"], ["-zlz4hc", "-C65536"]])
    func compressedInodesSayUnsupportedAndTheRestReads(options: [String]) throws {
        let image = try TestImage.full(options: options)
        defer { image.remove() }
        let erofs = try image.open()
        let large = try erofs.resolve("compressible.txt")
        #expect(large.layout.isCompressed)
        let error = try #require(throws: EROFSError.self) { try erofs.readBytes(large, count: 10) }
        #expect(error.code == .unsupported)
        #expect(error.message.contains(large.layout.description))
        #expect(error.nid == large.nid)
        // Directories, inline and uncompressed files, symlinks and xattrs still read.
        var compressed = 0
        var plain = 0
        let source = try snapshotHostTree(image.source)
        try erofs.walk { pathBytes, inode in
            let path = String(decoding: pathBytes, as: UTF8.self)
            if inode.fileType == .regular && inode.layout.isCompressed {
                compressed += 1
                return
            }
            if inode.fileType == .regular {
                plain += 1
                #expect(try erofs.readBytes(inode, count: Int(inode.size)) == source[path]?.content, "\(path)")
            }
            if inode.fileType == .symlink {
                #expect(try erofs.symlinkTarget(inode) == source[path]?.symlinkTarget)
            }
            _ = try erofs.xattrs(of: inode)
        }
        #expect(compressed > 0)
        #expect(plain > 0)
    }
}
