import EROFS
import EROFSTestSupport
import Foundation
import Testing

@Suite("pageshare check")
struct CheckCommandTests {
    @Test(
        "every fixture is sound; ishare fingerprints are verified",
        .enabled(if: Fixtures.isAvailable, "needs ../shared/fixtures"))
    func fixturesAreSound() throws {
        for name in Fixtures.names {
            let manifest = try Fixtures.manifest(name)
            let devices = manifest.devicePaths.flatMap { ["--device", $0] }
            let result = try PageShareBinary.run(["check", manifest.imagePath] + devices + ["--json"])
            #expect(result.status == 0, "\(name): \(result.error)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(result.output)) as? [String: Any])
            // Every path is visited, so hard-linked inodes count once per name.
            #expect(report["ok"] as? Bool == true && report["inodes"] as? Int == manifest.files.count, "\(name)")
            let withContent = Set(manifest.files.filter { $0.type == "file" && $0.size > 0 }.map(\.ino)).count
            let expected = manifest.ishare == nil ? 0 : withContent
            #expect(report["fingerprintsVerified"] as? Int == expected, "\(name)")
        }
    }

    @Test(
        "a file whose content does not match its fingerprint is named; exit 1",
        .enabled(if: Fixtures.isAvailable, "needs ../shared/fixtures"))
    func forgedContentIsFound() throws {
        let (bytes, path) = try ImagePatch.forgedIshareFixture()
        let directory = try TemporaryDirectory("check")
        defer { directory.remove() }
        let image = directory.path + "/forged.img"
        try TestTree.write(image, bytes)
        let result = try PageShareBinary.run(["check", image])
        #expect(result.status == 1)
        #expect(result.error.contains("1 problem(s)"), "\(result.error)")
        #expect(
            result.error.contains("/\(path): corrupt image: content does not match its sha256: fingerprint"),
            "\(result.error)")
    }

    @Test("a broken directory is reported with its path and the check goes on")
    func brokenDirectoryIsReported() throws {
        let image = try TestImage(options: []) { root in
            try TestTree.write(root + "/a/b/aa-placeholder-x", [1], makingParent: true)
            try TestTree.write(root + "/z/fine", [2], makingParent: true)
        }
        defer { image.remove() }
        let patched = try #require(
            ImagePatch.replacing(
                Array("aa-placeholder-x".utf8), with: Array("aa/placeholder-x".utf8), in: try image.bytes()))
        try TestTree.write(image.path, patched)
        let result = try PageShareBinary.run(["check", image.path, "--json"])
        #expect(result.status == 1)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.output)) as? [String: Any])
        let problems = report["problems"] as? [String] ?? []
        #expect(problems.count == 1 && problems[0].hasPrefix("/a/b: corrupt image:"), "\(problems)")
        #expect(report["inodes"] as? Int == 5, "the root, a, b, z and z/fine were read")
    }
}
