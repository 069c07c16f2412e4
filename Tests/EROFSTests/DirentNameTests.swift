import EROFS
import EROFSTestSupport
import Testing

/// A dirent name is one path component. Names patched into a real image to hold `/`, NUL or a second
/// `.`/`..` make the directory read fail with a corruption error naming the directory, for every consumer.
@Suite("Dirent names that are not one component")
struct DirentNameTests {
    static let placeholder = Array("aa-placeholder-x".utf8)

    /// An image whose directory `a/b` holds a file named ``placeholder``, patched to `name`.
    static func patched(_ name: String) throws -> [UInt8] {
        let image = try TestImage(options: []) { root in
            try TestTree.write(
                root + "/a/b/" + String(decoding: Self.placeholder, as: UTF8.self), [1, 2, 3], makingParent: true)
            try TestTree.write(root + "/a/b/other", [4])
        }
        defer { image.remove() }
        return try #require(ImagePatch.replacing(Self.placeholder, with: Array(name.utf8), in: try image.bytes()))
    }

    @Test(
        "the directory read fails with corruption naming the directory",
        arguments: ["../../evil-x-xxx", "a/b/c/d/e/f/g/hi", "zz-with\0nul-xxx", "..", "."])
    func refused(name: String) throws {
        let name = name.count < 16 ? name + String(repeating: "\0", count: 16 - name.utf8.count) : name
        let image = try Image(source: MemoryImageSource(try Self.patched(name)))
        let directory = try image.resolve("a/b")
        #expect {
            try image.forEachEntry(of: directory) { _ in }
        } throws: { error in
            let error = error as? EROFSError
            return error?.code == .corrupted && error?.nid == directory.nid
        }
        #expect(throws: EROFSError.self) { try image.walk { _, _ in } }
    }
}
