import EROFS
import EROFSTestSupport
import Foundation
import Glibc
import Testing

/// `pageshare extract`, `cat` and `stat` on every image of `../shared/fixtures` (mkfs.erofs 1.9.3), checked
/// against the manifests read from the kernel's mount.
@Suite("Commands on the mkfs.erofs 1.9.3 fixtures", .enabled(if: Fixtures.isAvailable, "needs ../shared/fixtures"))
struct FixtureCommandTests {
    /// What extraction can reproduce: as root everything but directory sizes (a host directory's own);
    /// otherwise no owners, devices or xattrs, and no set-id bits.
    static func comparable(_ entries: [ManifestEntry], asRoot: Bool) -> [ManifestEntry] {
        entries.compactMap { entry in
            var entry = entry
            if entry.type == "dir" { entry.size = 0 }
            if !asRoot {
                if entry.type == "chr" || entry.type == "blk" { return nil }
                (entry.uid, entry.gid, entry.xattrs) = (0, 0, [:])
                entry.mode &= 0o777
            }
            return entry
        }
    }

    @Test("extract reproduces the manifest", arguments: Fixtures.names)
    func extractMatchesTheManifest(name: String) throws {
        let manifest = try Fixtures.manifest(name)
        let directory = try TemporaryDirectory("extract")
        defer { directory.remove() }
        let output = directory.path + "/out"
        let devices = manifest.devicePaths.flatMap { ["--device", $0] }
        let result = try PageShareBinary.run(["extract", manifest.imagePath] + devices + [output])
        #expect(result.status == 0, "\(name): \(result.error)")
        let asRoot = geteuid() == 0
        let problems = compareManifests(
            Self.comparable(try manifestOfHostTree(output), asRoot: asRoot),
            Self.comparable(manifest.files, asRoot: asRoot))
        #expect(
            problems.isEmpty, "\(name): \(problems.count) differences\n\(problems.prefix(20).joined(separator: "\n"))")
    }

    @Test("inspect, ls -R, and cat and stat --json of a spread of files", arguments: Fixtures.names)
    func catAndStat(name: String) throws {
        let manifest = try Fixtures.manifest(name)
        let devices = manifest.devicePaths.flatMap { ["--device", $0] }
        let inspect = try PageShareBinary.run(["inspect", manifest.imagePath] + devices)
        #expect(inspect.status == 0, "\(name) inspect: \(inspect.error)")
        let listing = try PageShareBinary.run(["ls", "-R", manifest.imagePath] + devices + ["/"])
        let listed = String(decoding: listing.output, as: UTF8.self).split(separator: "\n").count
        #expect(listing.status == 0 && listed == manifest.files.count - 1, "\(name) ls -R: \(listing.error)")
        let files = manifest.files.filter { $0.type == "file" && $0.size < 4 << 20 }
        for entry in files.enumerated().filter({ $0.offset % 40 == 0 }).map(\.element) {
            let cat = try PageShareBinary.run(["cat", manifest.imagePath] + devices + [entry.path])
            let digest = sha256Hex(cat.output)
            #expect(cat.status == 0 && digest == entry.sha256, "\(name) cat \(entry.path): \(cat.error)")
            let stat = try PageShareBinary.run(["stat", manifest.imagePath] + devices + [entry.path, "--json"])
            let json = try #require(try JSONSerialization.jsonObject(with: Data(stat.output)) as? [String: Any])
            #expect(
                json["size"] as? UInt64 == entry.size && json["nlink"] as? UInt32 == entry.nlink,
                "\(name) \(entry.path)")
            #expect((json["xattrs"] as? [String: String] ?? [:]) == entry.xattrs, "\(name) \(entry.path) xattrs")
        }
    }
}
