import Crypto
import EROFS
import EROFSTestSupport
import PageCache

/// Images with ishare fingerprint xattrs, built byte by byte (mkfs.erofs 1.5 cannot write them).
enum CacheFixtures {
    typealias Node = SyntheticImage.Node

    /// Deterministic content for file `name`, `pages` pages long (plus a partial page).
    static func content(_ name: String, pages: Int = 3) -> [UInt8] {
        let seed = name.utf8.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }
        return TestTree.pattern(pages * 4096 + 123, seed: seed)
    }

    /// The sha256 of the content.
    static func digest(_ bytes: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: bytes)) }

    /// The fingerprint `mkfs.erofs --xattr-inode-digest` writes: `sha256:` and the raw digest.
    static func fingerprint(_ bytes: [UInt8]) -> [UInt8] { Array("sha256:".utf8) + Self.digest(bytes) }

    /// An image holding `files` (name → content), each with a fingerprint xattr (or a forged one).
    /// The long prefix mkfs.erofs 1.9 uses without `--xattr-inode-digest=NAME`: no namespace (base index 0).
    static let defaultPrefix: (base: UInt8, infix: String) = (0, "erofs.fingerprint.v1")

    static func image(
        _ files: [(String, [UInt8])], forging: [String: [UInt8]] = [:],
        prefix: (base: UInt8, infix: String) = defaultPrefix
    ) throws -> Image {
        try Image(source: MemoryImageSource(try Self.imageBytes(files, forging: forging, prefix: prefix)))
    }

    /// The bytes of ``image(_:forging:)``.
    static func imageBytes(
        _ files: [(String, [UInt8])], forging: [String: [UInt8]] = [:],
        prefix: (base: UInt8, infix: String) = defaultPrefix
    ) throws -> [UInt8] {
        let root = Node("", .directory)
        for (name, bytes) in files {
            let node = Node(name, .regular(bytes))
            node.xattrs = [.init(nameIndex: 0x80, suffix: "", value: forging[name] ?? Self.fingerprint(bytes))]
            root.children.append(node)
        }
        var image = SyntheticImage(root: root)
        image.longPrefixes = [prefix]
        image.ishareXattrPrefixID = 0
        return image.build()
    }

    /// Reads a whole file through the cache.
    static func readAll(_ cache: SharedPageCache, _ imageID: String, _ path: String) async throws -> [UInt8] {
        var result: [UInt8] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 5000, alignment: 8)
        defer { buffer.deallocate() }
        var offset: UInt64 = 0
        while true {
            let count = try await cache.read(imageID: imageID, path: path, at: offset, into: buffer)
            if count == 0 { return result }
            result += buffer[0..<count]
            offset += UInt64(count)
        }
    }
}
