import EROFS
import EROFSTestSupport
import Foundation
import PageCache
import Testing

@testable import PageShareServer

/// The daemon's `files/`, `stat/` and `dirs/` over the images of `../shared/fixtures` (mkfs.erofs 1.9.3),
/// checked against the manifests read from the kernel's mount.
@Suite("Serving the mkfs.erofs 1.9.3 fixtures", .enabled(if: Fixtures.isAvailable, "needs ../shared/fixtures"))
struct FixtureServingTests {
    /// A spread of each image's entries: every type, every 25th file, and the largest file.
    static func sample(_ manifest: FixtureManifest) -> [ManifestEntry] {
        let files = manifest.files.filter { $0.type == "file" }
        var picked = Dictionary(grouping: manifest.files, by: \.type).values.compactMap(\.first)
        picked += files.enumerated().filter { $0.offset % 25 == 0 }.map(\.element)
        if let largest = files.filter({ $0.size < 64 << 20 }).max(by: { $0.size < $1.size }) { picked.append(largest) }
        return picked
    }

    static func encode(_ path: String) -> String {
        path.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "/-._~")))!
    }

    @Test("files/, stat/ and dirs/ match the manifest", arguments: Fixtures.names)
    func servesAsTheKernelReads(name: String) async throws {
        let manifest = try Fixtures.manifest(name)
        let image = try Image(path: manifest.imagePath, devicePaths: manifest.devicePaths)
        let server = try await ServerFixture.start([("img", image, "default", .xattr)])
        for entry in Self.sample(manifest) where entry.path != "." {
            let path = Self.encode(entry.path)
            let stat = try await server.get("/v1/images/img/stat/\(path)", over: .http2)
            #expect(stat.status == 200, "\(name) stat \(entry.path): \(stat.bodyText)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(stat.body)) as? [String: Any])
            #expect(json["size"] as? UInt64 == entry.size, "\(name) \(entry.path) size")
            #expect(json["mode"] as? String == "0" + String(entry.mode, radix: 8), "\(name) \(entry.path) mode")
            #expect(json["uid"] as? UInt32 == entry.uid && json["gid"] as? UInt32 == entry.gid, "\(name) \(entry.path)")
            #expect(json["nlink"] as? UInt32 == entry.nlink, "\(name) \(entry.path) nlink")
            #expect(json["symlinkTarget"] as? String == entry.target, "\(name) \(entry.path) target")
            #expect(
                (json["xattrs"] as? [String: String] ?? [:]) == entry.xattrs, "\(name) \(entry.path) xattrs")
            if entry.type == "file" {
                let file = try await server.get("/v1/images/img/files/\(path)")
                #expect(file.status == 200, "\(name) files \(entry.path): \(file.bodyText)")
                let digest = sha256Hex(file.body)
                #expect(digest == entry.sha256, "\(name) \(entry.path): \(file.body.count) bytes")
            }
        }
        // The root listing names exactly the manifest's top-level entries.
        let listing = try await server.get("/v1/images/img/dirs/?limit=10000")
        let body = try #require(try JSONSerialization.jsonObject(with: Data(listing.body)) as? [String: Any])
        let names = Set(((body["entries"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String })
        let expected = Set(manifest.files.map(\.path).filter { $0 != "." && !$0.contains("/") })
        #expect(names.subtracting([".", ".."]) == expected, "\(name) root listing")
        await server.stop()
    }

    /// Versions A, B and C of an ishare triple in one domain: every file served, identical files under one
    /// strong entity tag made from the `sha256:` fingerprint, resident bytes as the manifest says.
    @Test("an ishare triple shares through the daemon", arguments: ["ishare-plain", "ishare-zstd"])
    func ishareTripleShares(triple: String) async throws {
        var images: [(String, Image, String, FingerprintMode)] = []
        var manifests: [String: FixtureManifest] = [:]
        for version in ["A", "B", "C"] {
            let manifest = try Fixtures.manifest("\(triple)-\(version)")
            manifests[version] = manifest
            images.append((version, try Image(path: manifest.imagePath), "tenant", .xattr))
        }
        let server = try await ServerFixture.start(images)
        for (version, manifest) in manifests.sorted(by: { $0.key < $1.key }) {
            for entry in manifest.files where entry.type == "file" {
                let response = try await server.get("/v1/images/\(version)/files/\(Self.encode(entry.path))")
                let digest = sha256Hex(response.body)
                #expect(response.status == 200 && digest == entry.sha256, "\(version)/\(entry.path)")
                let sha = try #require(entry.sha256)
                // mkfs.erofs writes no fingerprint for an empty file.
                if entry.size > 0 {
                    #expect(response.header("etag") == "\"sha256-\(sha)\"", "\(version)/\(entry.path)")
                }
            }
        }
        let statistics = server.cache.statistics(for: try TrustDomain("tenant"))
        let figures = try #require(manifests["A"]?.ishare)
        #expect(statistics.residentBytes == figures.unique_content_bytes_4k_pages)
        #expect(statistics.residentBytes + statistics.savedBytes == figures.nosharing_bytes_4k_pages)
        let file = try #require(manifests["B"]?.files.first { $0.type == "file" })
        let stat = try await server.get("/v1/images/B/stat/\(Self.encode(file.path))")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(stat.body)) as? [String: Any])
        #expect(json["fingerprint"] as? String == "sha256:\(file.sha256 ?? "")")
        #expect((json["xattrs"] as? [String: String] ?? [:]).isEmpty, "the fingerprint xattr is hidden")
        await server.stop()
    }
}
