import EROFS
import Foundation

/// A test image built by Debian's mkfs.erofs from a tree written by ``TestTree``, in its own temp dir.
public struct TestImage: Sendable {
    public let directory: TemporaryDirectory
    public let source: String
    public let path: String
    public let options: [String]
    /// The extra device mkfs wrote chunk data to (`--blobdev`), when asked for one.
    public let blobDevice: String?

    /// Writes the full test tree and builds an image of it with `options`.
    public static func full(
        options: [String], largeFileBytes: Int = 300_000, withBlobDevice: Bool = false
    ) throws -> TestImage {
        try TestImage(options: options, withBlobDevice: withBlobDevice) {
            try TestTree.writeFull(at: $0, largeFileBytes: largeFileBytes)
        }
    }

    /// Writes a tree with `populate` and builds an image of it with `options` (plus `--blobdev` when
    /// `withBlobDevice`).
    public init(options: [String], withBlobDevice: Bool = false, populate: (String) throws -> Void) throws {
        self.directory = try TemporaryDirectory("image")
        self.source = self.directory.path + "/src"
        self.path = self.directory.path + "/test.img"
        self.blobDevice = withBlobDevice ? self.directory.path + "/blob" : nil
        self.options = options + (self.blobDevice.map { ["--blobdev=\($0)"] } ?? [])
        try TestTree.make(self.source)
        try populate(self.source)
        try ErofsUtils.mkfs(self.path, from: self.source, options: self.options)
    }

    public func open(devicePaths: [String] = []) throws -> Image {
        try Image(path: self.path, devicePaths: devicePaths)
    }

    public func bytes() throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: self.path)))
    }

    public func remove() { self.directory.remove() }
}
