import ArgumentParser
import EROFS
import Foundation

/// `pageshare inspect IMAGE [--json]`: superblock, features and counts.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Show an image's superblock, features and file counts.")

    @OptionGroup var options: ImageOptions
    @Flag(help: "Print JSON.") var json = false

    struct Report: Encodable {
        var blockSize: Int
        var blocks: UInt64
        var inodes: UInt64
        var rootNid: UInt64
        var uuid: String
        var volumeName: String
        var buildTime: Int64
        var compatFeatures: [String]
        var incompatFeatures: [String]
        var extraDevices: Int
        var packedNid: UInt64?
        var metaboxNid: UInt64?
        var xattrPrefixes: Int
        var ishareXattrPrefixID: Int?
        var counts: [String: Int]
        var totalFileBytes: UInt64
        var compressedFiles: Int
        var compressionAlgorithms: [String]
        var compression: [String: Int]
    }

    func run() throws {
        let image = try self.options.open()
        let superBlock = image.superBlock
        var counts: [String: Int] = [:]
        var totalBytes: UInt64 = 0
        var compressed = 0
        try image.walk { _, inode in
            counts[inode.fileType.rawValue, default: 0] += 1
            if inode.fileType == .regular {
                totalBytes += inode.size
                if inode.layout.isCompressed { compressed += 1 }
            }
        }
        let report = Report(
            blockSize: superBlock.blockSize, blocks: superBlock.blockCount, inodes: superBlock.inodeCount,
            rootNid: superBlock.rootNid, uuid: superBlock.uuidString, volumeName: superBlock.volumeName,
            buildTime: Int64(bitPattern: superBlock.epoch), compatFeatures: superBlock.compatFeatures.names,
            incompatFeatures: superBlock.incompatFeatures.names, extraDevices: superBlock.extraDeviceCount,
            packedNid: superBlock.packedNid, metaboxNid: superBlock.metaboxNid,
            xattrPrefixes: superBlock.xattrPrefixCount, ishareXattrPrefixID: superBlock.ishareXattrPrefixID,
            counts: counts, totalFileBytes: totalBytes, compressedFiles: compressed,
            compressionAlgorithms: image.compression.algorithms.sorted { $0.rawValue < $1.rawValue }.map(\.description),
            compression: Self.compressionSettings(image.compression))
        if self.json {
            try printJSON(report)
            return
        }
        print("image:              \(self.options.image)")
        print("block size:         \(report.blockSize)")
        print("blocks:             \(report.blocks)")
        print("inodes:             \(report.inodes)")
        print("root nid:           \(report.rootNid)")
        print("uuid:               \(report.uuid)")
        print("volume name:        \(report.volumeName)")
        print("build time:         \(report.buildTime)")
        print("compat features:    \(report.compatFeatures.joined(separator: " "))")
        print("incompat features:  \(report.incompatFeatures.joined(separator: " "))")
        print("extra devices:      \(report.extraDevices)")
        if let nid = report.packedNid { print("packed nid:         \(nid)") }
        if let nid = report.metaboxNid { print("metabox nid:        \(nid)") }
        print("xattr prefixes:     \(report.xattrPrefixes)")
        if let id = report.ishareXattrPrefixID { print("ishare prefix id:   \(id)") }
        for (type, count) in counts.sorted(by: { $0.key < $1.key }) {
            print("\((type + ":").padding(toLength: 20, withPad: " ", startingAt: 0))\(count)")
        }
        print("file bytes:         \(report.totalFileBytes)")
        print("compressed files:   \(report.compressedFiles)")
        if compressed > 0 || superBlock.incompatFeatures.contains(.compressionConfigs) {
            let settings = report.compression.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            print(
                "compression:        \(report.compressionAlgorithms.joined(separator: " ")) (\(settings.joined(separator: ", ")))"
            )
        }
    }

    /// The configuration records of the algorithms in use, as `name: value`.
    static func compressionSettings(_ configuration: CompressionConfiguration) -> [String: Int] {
        var settings: [String: Int] = [:]
        for algorithm in configuration.algorithms {
            switch algorithm {
            case .lz4:
                settings["lz4MaxDistance"] = Int(configuration.lz4MaxDistance)
                settings["lz4MaxPclusterBlocks"] = configuration.lz4MaxPclusterBlocks
            case .lzma: settings["lzmaDictionarySize"] = Int(configuration.lzmaDictionarySize)
            case .deflate: settings["deflateWindowBits"] = Int(configuration.deflateWindowBits)
            case .zstd: settings["zstdWindowLog"] = Int(configuration.zstdWindowLog)
            }
        }
        return settings
    }
}
