import Foundation

/// The developer fixtures in `../shared/fixtures`: images written by mkfs.erofs 1.9.3, each with a
/// manifest read from the Linux kernel's mount of it (see that directory's README).
public enum Fixtures {
    /// The fixtures directory: `PAGESHARE_FIXTURES`, else `../shared/fixtures` beside the package; nil
    /// when neither exists (tests then skip with a message naming the path).
    public static let directory: String? = {
        if let configured = ProcessInfo.processInfo.environment["PAGESHARE_FIXTURES"] {
            return FileManager.default.fileExists(atPath: configured) ? configured : nil
        }
        let candidate = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/fixtures").standardizedFileURL.path
        return FileManager.default.fileExists(atPath: candidate + "/README.md") ? candidate : nil
    }()

    /// Whether the fixtures are there (a test's `.enabled(if:)` condition).
    public static var isAvailable: Bool { directory != nil }

    /// The fixture names (manifest file names without `.json`), sorted; empty without the fixtures.
    public static var names: [String] {
        guard let directory else { return [] }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    /// The manifest of fixture `name`.
    public static func manifest(_ name: String) throws -> FixtureManifest {
        guard let directory else { throw ToolFailure(tool: "fixtures", message: "no fixtures directory") }
        // mtime_ns of a year-2400 file passes Int64 (and JSONDecoder's numbers): read it as a string.
        let text = try String(contentsOfFile: "\(directory)/\(name).json", encoding: .utf8)
            .replacing(#/"mtime_ns": *(-?[0-9]+)/#) { "\"mtime_ns\": \"\($0.1)\"" }
        var manifest = try JSONDecoder().decode(FixtureManifest.self, from: Data(text.utf8))
        manifest.name = name
        manifest.imagePath = "\(directory)/\(name)" + (manifest.devices == nil ? ".img" : ".erofs")
        manifest.devicePaths = (manifest.devices ?? []).map { "\(directory)/\($0)" }
        return manifest
    }
}

/// A fixture's manifest: the mkfs options and every file as the kernel's mount showed it.
public struct FixtureManifest: Decodable, Sendable {
    public var name = ""
    public var imagePath = ""
    public var devicePaths: [String] = []
    public let options: [String]
    public let blocksize: Int
    public let features: [String]
    public let devices: [String]?
    public let files: [ManifestEntry]
    public let ishare: Ishare?

    /// The ishare figures of the fingerprint triples.
    public struct Ishare: Decodable, Sendable {
        public let unique_content_bytes_4k_pages: Int
        public let nosharing_bytes_4k_pages: Int
    }

    enum CodingKeys: String, CodingKey { case options, blocksize, features, devices, files, ishare }

    /// The entries keyed by path ("." is the root).
    public var entriesByPath: [String: ManifestEntry] {
        Dictionary(self.files.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
    }
}

/// One file as the manifest records it (`stat`, `readlink`, the xattrs and the sha256 of the content).
public struct ManifestEntry: Decodable, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    /// file, dir, symlink, chr, blk, fifo or socket.
    public var type: String
    /// Permission bits with set-id and sticky bits.
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var size: UInt64
    /// Nanoseconds since the epoch (the manifest's `mtime_ns`).
    public var mtimeNanoseconds: Int128
    public var sha256: String?
    public var target: String?
    /// `st_rdev` in the Linux encoding, for devices.
    public var rdev: UInt32?
    public var nlink: UInt32
    /// The inode number: entries with equal numbers are one inode (hard links). Not compared directly.
    public var ino: UInt64
    /// Xattr values, base64.
    public var xattrs: [String: String]

    enum CodingKeys: String, CodingKey {
        case path, type, mode, uid, gid, size, mtimeNanoseconds = "mtime_ns", sha256, target, rdev, nlink, ino, xattrs
    }

    public init(
        path: String, type: String, mode: UInt32, uid: UInt32, gid: UInt32, size: UInt64, mtimeNanoseconds: Int128,
        sha256: String?, target: String?, rdev: UInt32?, nlink: UInt32, ino: UInt64, xattrs: [String: String]
    ) {
        self.path = path
        self.type = type
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.mtimeNanoseconds = mtimeNanoseconds
        self.sha256 = sha256
        self.target = target
        self.rdev = rdev
        self.nlink = nlink
        self.ino = ino
        self.xattrs = xattrs
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let nanoseconds = try container.decode(String.self, forKey: .mtimeNanoseconds)
        guard let mtime = Int128(nanoseconds) else {
            throw DecodingError.dataCorruptedError(
                forKey: .mtimeNanoseconds, in: container, debugDescription: "not an integer: \(nanoseconds)")
        }
        self.init(
            path: try container.decode(String.self, forKey: .path),
            type: try container.decode(String.self, forKey: .type),
            mode: try container.decode(UInt32.self, forKey: .mode),
            uid: try container.decode(UInt32.self, forKey: .uid),
            gid: try container.decode(UInt32.self, forKey: .gid),
            size: try container.decode(UInt64.self, forKey: .size),
            mtimeNanoseconds: mtime, sha256: try container.decodeIfPresent(String.self, forKey: .sha256),
            target: try container.decodeIfPresent(String.self, forKey: .target),
            rdev: try container.decodeIfPresent(UInt32.self, forKey: .rdev),
            nlink: try container.decode(UInt32.self, forKey: .nlink),
            ino: try container.decode(UInt64.self, forKey: .ino),
            xattrs: try container.decode([String: String].self, forKey: .xattrs))
    }

    public var description: String {
        "\(self.type) 0\(String(self.mode, radix: 8)) \(self.uid):\(self.gid) size=\(self.size) "
            + "mtime_ns=\(self.mtimeNanoseconds) nlink=\(self.nlink) sha256=\(self.sha256 ?? "-") "
            + "target=\(self.target ?? "-") rdev=\(self.rdev.map(String.init) ?? "-") xattrs=\(self.xattrs.keys.sorted())"
    }

    /// Every field that differs from `other`, except the inode number (compared as hard-link groups).
    public func differences(from other: ManifestEntry) -> [String] {
        var found: [String] = []
        func check<T: Equatable>(_ name: String, _ a: T, _ b: T) {
            if a != b { found.append("\(name): \(a) != \(b)") }
        }
        check("type", self.type, other.type)
        check("mode", String(self.mode, radix: 8), String(other.mode, radix: 8))
        check("uid", self.uid, other.uid)
        check("gid", self.gid, other.gid)
        check("size", self.size, other.size)
        check("mtime_ns", self.mtimeNanoseconds, other.mtimeNanoseconds)
        check("sha256", self.sha256, other.sha256)
        check("target", self.target, other.target)
        check("rdev", self.rdev, other.rdev)
        check("nlink", self.nlink, other.nlink)
        check("xattrs", self.xattrs, other.xattrs)
        return found
    }
}

/// Compares two manifests of one tree: entries field by field, and hard-link groups (paths sharing an
/// inode number on one side must share one on the other). One line per difference.
public func compareManifests(_ lhs: [ManifestEntry], _ rhs: [ManifestEntry]) -> [String] {
    let left = Dictionary(lhs.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
    let right = Dictionary(rhs.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
    var problems: [String] = []
    for path in Set(left.keys).union(right.keys).sorted() {
        switch (left[path], right[path]) {
        case (let a?, let b?): problems += a.differences(from: b).map { "\(path): \($0)" }
        case (nil, _): problems.append("\(path): missing on the left")
        case (_, nil): problems.append("\(path): missing on the right")
        }
    }
    func groups(_ entries: [ManifestEntry]) -> Set<[String]> {
        Set(Dictionary(grouping: entries, by: \.ino).values.map { $0.map(\.path).sorted() }.filter { $0.count > 1 })
    }
    for group in groups(lhs).symmetricDifference(groups(rhs)).sorted(by: { $0.lexicographicallyPrecedes($1) }) {
        problems.append("hard-link group on one side only: \(group.joined(separator: ", "))")
    }
    return problems
}
