import EROFS
import EROFSTestSupport
import Testing

@Suite("Path resolution and lookup")
struct PathResolutionTests {
    let image: TestImage

    init() throws { self.image = try TestImage.full(options: []) }

    @Test func resolvesPlainPathsFromTheRoot() throws {
        defer { self.image.remove() }
        let erofs = try self.image.open()
        let leaf = try erofs.resolve("/dir/sub/deeper/leaf")
        #expect(try erofs.readBytes(leaf, count: 100) == Array("leaf\n".utf8))
        #expect(try erofs.resolve("dir/sub/deeper/leaf").nid == leaf.nid)
        #expect(try erofs.resolve("//dir/./sub//deeper/leaf").nid == leaf.nid)
        #expect(try erofs.resolve("/").nid == erofs.superBlock.rootNid)
        #expect(try erofs.resolve("").nid == erofs.superBlock.rootNid)
    }

    @Test func dotDotNeverClimbsAboveTheRoot() throws {
        defer { self.image.remove() }
        let erofs = try self.image.open()
        #expect(try erofs.resolve("../../..").nid == erofs.superBlock.rootNid)
        #expect(try erofs.resolve("/../../hello.txt").nid == erofs.resolve("hello.txt").nid)
        #expect(try erofs.resolve("dir/sub/../../hello.txt").nid == erofs.resolve("hello.txt").nid)
    }

    @Test func symlinksResolveInsideTheImage() throws {
        defer { self.image.remove() }
        let erofs = try self.image.open()
        let hello = try erofs.resolve("hello.txt")
        #expect(try erofs.resolve("link-relative").nid == hello.nid)
        #expect(try erofs.resolve("link-relative", followingFinalSymlink: false).fileType == .symlink)
        // An absolute target restarts at the image root, never the host's.
        #expect(try erofs.resolve("link-absolute/leaf").nid == erofs.resolve("dir/sub/deeper/leaf").nid)
        #expect(try erofs.resolve("link-absolute/../../../hello.txt").nid == hello.nid)
        let long = try erofs.resolve("link-long", followingFinalSymlink: false)
        #expect(try erofs.symlinkTarget(long).count == 3003)
    }

    @Test func errorsSayWhatWentWrong() throws {
        defer { self.image.remove() }
        let erofs = try self.image.open()
        #expect(throws: EROFSError(.notFound, "")) { try erofs.resolve("no/such") }
        #expect(throws: EROFSError(.notFound, "")) { try erofs.resolve("link-dangling") }
        #expect(throws: EROFSError(.notADirectory, "")) { try erofs.resolve("hello.txt/x") }
        #expect(throws: EROFSError(.tooManySymlinks, "")) { try erofs.resolve("loop-a") }
        #expect(throws: EROFSError(.invalidArgument, "")) { try erofs.resolve([0x61, 0, 0x62]) }
        #expect(throws: EROFSError(.notASymlink, "")) { try erofs.symlinkTarget(try erofs.resolve("hello.txt")) }
        // Not following a final looping symlink is fine.
        #expect(try erofs.resolve("loop-a", followingFinalSymlink: false).fileType == .symlink)
    }

    @Test func largeDirectoryListsSortedAndFindsEveryName() throws {
        defer { self.image.remove() }
        let erofs = try self.image.open()
        let many = try erofs.resolve("many")
        let names = try erofs.entries(of: many).filter { !$0.isDotOrDotDot }.map(\.nameString)
        #expect(names.count == 3000)
        #expect(names == names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
        for index in 0..<3000 {
            let entry = try #require(try erofs.lookup(Array("entry-\(index)".utf8), in: many))
            let inode = try erofs.inode(entry.nid)
            #expect(try erofs.readBytes(inode, count: 16) == Array("\(index)\n".utf8))
        }
        #expect(try erofs.lookup(Array("entry-3000".utf8), in: many) == nil)
        #expect(try erofs.lookup(Array("a".utf8), in: many) == nil)
        #expect(try erofs.lookup(Array("zzz".utf8), in: many) == nil)
        #expect(try erofs.lookup(Array(repeating: 0x61, count: 300), in: many) == nil)
    }

    @Test func namesAreBytesNotStrings() throws {
        defer { self.image.remove() }
        let erofs = try self.image.open()
        #expect(try erofs.resolve("names/ünïcödé").size == 5)
        #expect(try erofs.resolve("names/with space").size == 6)
        #expect(try erofs.resolve("names/" + String(repeating: "n", count: 254)).size == 10)
    }
}
