import EROFSTestSupport
import Foundation
import Testing

/// `--image-dir`: images dropped into a directory are attached (their subdirectory names the domain),
/// images removed are detached, images replaced are attached again with their new content.
@Suite("The image directory")
struct ImageDirectoryTests {
    static func image(_ content: String) throws -> [UInt8] {
        let image = try TestImage(options: []) { try TestTree.write($0 + "/file", Array(content.utf8)) }
        defer { image.remove() }
        return try image.bytes()
    }

    /// Polls `body` until `done` holds for it (or 5 s pass).
    static func eventually(_ done: (String) -> Bool, _ body: () -> String) -> String {
        var value = body()
        for _ in 0..<250 where !done(value) {
            Thread.sleep(forTimeInterval: 0.02)
            value = body()
        }
        return value
    }

    /// Writes `bytes` under a hidden name and renames it to `path`, as tools that drop images in should.
    static func drop(_ bytes: [UInt8], at path: String) throws {
        let url = URL(fileURLWithPath: path)
        let hidden = url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".tmp")
        try TestTree.write(hidden.path, bytes)
        guard rename(hidden.path, path) == 0 else { throw POSIXError(.EIO) }
    }

    @Test(
        "attached at start and as files arrive, in their subdirectory's domain; detached as they go; replaced ones serve the new bytes; bad ones are listed failed"
    )
    func directoryFollowsItsFiles() throws {
        let directory = try TemporaryDirectory("image-dir")
        defer { directory.remove() }
        let images = directory.path + "/images"
        try TestTree.make(images + "/team")
        try TestTree.write(images + "/a.erofs", try Self.image("alpha"))
        try TestTree.write(images + "/team/b.img", try Self.image("beta"))
        try TestTree.write(images + "/.hidden.erofs", try Self.image("hidden"))
        try TestTree.write(images + "/notes.txt", Array("not an image".utf8))
        let daemon = try Daemon(directory: directory.path, arguments: ["--image-dir", images])
        defer { daemon.stop() }
        func file(_ id: String) -> String { daemon.request("GET", "/v1/images/\(id)/files/file").body }
        func status(_ id: String) -> String { daemon.request("GET", "/v1/admin/images/\(id)").body }

        #expect(file("a").hasPrefix("alpha") && file("b").hasPrefix("beta"), "attached at start")
        #expect(status("b").contains(#""domain":"team""#) && status("b").contains(#""origin":"directory""#))
        #expect(daemon.request("GET", "/v1/admin/images/.hidden").status == 404, "hidden names are ignored")
        #expect(daemon.request("GET", "/v1/admin/images/notes").status == 404, "only *.erofs and *.img")

        try Self.drop(try Self.image("gamma"), at: images + "/c.erofs")
        #expect(Self.eventually({ $0.hasPrefix("gamma") }) { file("c") }.hasPrefix("gamma"), "attached on arrival")

        try FileManager.default.removeItem(atPath: images + "/a.erofs")
        let gone = Self.eventually({ $0 == "404" }) { String(daemon.request("GET", "/v1/admin/images/a").status) }
        #expect(gone == "404", "detached when its file goes")

        try Self.drop(try Self.image("beta, second edition"), at: images + "/team/b.img")
        #expect(Self.eventually({ $0.hasPrefix("beta, second") }) { file("b") }.hasPrefix("beta, second"))

        try TestTree.write(images + "/bad.erofs", Array(repeating: 0x42, count: 8192))
        let bad = Self.eventually({ $0.contains("failed") }) { status("bad") }
        #expect(bad.contains(#""state":"failed""#) && bad.contains("not an EROFS image"), "\(bad)")
        try Self.drop(try Self.image("repaired"), at: images + "/bad.erofs")
        #expect(Self.eventually({ $0.hasPrefix("repaired") }) { file("bad") }.hasPrefix("repaired"))
        #expect(daemon.request("GET", "/metrics").body.contains("pageshare_images_failed 0"))
    }
}
