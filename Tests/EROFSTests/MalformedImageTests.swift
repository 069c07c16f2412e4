import EROFSTestSupport
import Testing

@testable import EROFS

/// Corrupt images must give `EROFSError` (or, where the damage is harmless, read fine), never trap or hang.
@Suite("Malformed images")
struct MalformedImageTests {
    /// A compact tree touching every structure: inline and block data, chunk indexes, xattrs (inline and
    /// shared), symlinks, several directory blocks.
    static func images() throws -> [(String, [UInt8])] {
        var result: [(String, [UInt8])] = []
        for options in [
            [], ["--chunksize=4096", "-Eforce-chunk-indexes"], ["-Eforce-inode-extended"],
            ["-zlz4hc", "-C16384", "-Eztailpacking"], ["-zlz4", "-Elegacy-compress"],
        ] {
            let image = try TestImage(options: options) { source in
                try TestTree.write(source + "/inline", Array("tail data\n".utf8))
                try TestTree.write(source + "/blocks", TestTree.pattern(3 * 4096 + 100, seed: 5))
                try TestTree.write(
                    source + "/text", Array((0..<2500).map { "compressible line \($0 % 11)\n" }.joined().utf8))
                try TestTree.make(source + "/d/e")
                for index in 0..<300 { try TestTree.write(source + "/d/file-\(index)", Array("\(index)".utf8)) }
                try TestTree.symlink("../inline", source + "/d/e/up")
                try TestTree.setXattr(source + "/inline", "user.one", Array("1".utf8))
                try TestTree.setXattr(source + "/blocks", "user.shared", Array("shared value".utf8))
                try TestTree.setXattr(source + "/d", "user.shared", Array("shared value".utf8))
            }
            defer { image.remove() }
            result.append((options.joined(separator: " "), try image.bytes()))
        }
        return result
    }

    /// Opens and reads everything; returns the error if one is thrown. A trap ends the test process, which
    /// the test run reports as a crash.
    static func exercise(_ bytes: [UInt8]) -> EROFSError? {
        do {
            let image = try Image(source: MemoryImageSource(bytes))
            _ = try image.check(maximumBytesPerFile: 1 << 20)
            return nil
        } catch let error as EROFSError {
            return error
        } catch {
            Issue.record("non-EROFSError thrown: \(error)")
            return nil
        }
    }

    @Test func truncatedAnywhereFailsCleanly() throws {
        for (name, bytes) in try Self.images() {
            var cuts = Array(stride(from: 0, to: bytes.count, by: 509)) + [1023, 1024, 1100, 1151, 1152, 4095, 4096]
            cuts.append(bytes.count - 1)
            var failures = 0
            for cut in cuts where cut < bytes.count {
                if Self.exercise(Array(bytes[..<cut])) != nil { failures += 1 }
            }
            // Cutting into the superblock or metadata must be noticed.
            #expect(failures > 0, "\(name)")
            #expect(Self.exercise(Array(bytes[..<1100]))?.code == .notEROFS)
        }
    }

    /// Synthetic compressed images (every algorithm, fragments, HEAD2, dedupe) under byte flips.
    @Test func compressedMetadataAndStreamFlipsNeverTrap() throws {
        var generator = SplitMix64(seed: 77)
        var images = CompressionAlgorithm.allCases.map { SyntheticCompressionTests.image($0).build() }
        images.append(SyntheticCompressionTests.twoAlgorithmImage().build())
        images.append(SyntheticCompressionTests.encodedExtentImage(.zstd).build())
        for pristine in images {
            #expect(Self.exercise(pristine) == nil)
            for round in 0..<150 {
                var bytes = pristine
                for _ in 0..<(1 + round % 6) {
                    bytes[Int(generator.next() % UInt64(bytes.count))] ^= UInt8(
                        truncatingIfNeeded: generator.next() | 1)
                }
                _ = Self.exercise(bytes)
            }
        }
    }

    @Test func randomByteFlipsNeverTrap() throws {
        var generator = SplitMix64(seed: 2026)
        for (_, pristine) in try Self.images() {
            let metadataEnd = min(pristine.count, 64 * 1024)
            for round in 0..<400 {
                var bytes = pristine
                for _ in 0..<(1 + round % 8) {
                    // Mostly the superblock and metadata, sometimes anywhere.
                    let limit = round % 4 == 0 ? bytes.count : metadataEnd
                    let position =
                        round % 5 == 0 ? 1024 + Int(generator.next() % 128) : Int(generator.next() % UInt64(limit))
                    bytes[position] ^= UInt8(truncatingIfNeeded: generator.next() | 1)
                }
                _ = Self.exercise(SuperBlockTests.resealed(bytes))
            }
        }
    }

    @Test func everyBitOfTheRootInodeIsSafe() throws {
        let (_, pristine) = try Self.images()[0]
        let image = try Image(source: MemoryImageSource(pristine))
        let root = try image.root()
        let start = Int(root.location.offset)
        for offset in start..<start + root.recordSize + 16 {
            for bit in 0..<8 {
                var bytes = pristine
                bytes[offset] ^= 1 << bit
                _ = Self.exercise(bytes)
            }
        }
    }

    /// Finds the directory entry called `name` in `directory` and returns its byte offset in the image.
    static func direntOffset(_ image: Image, _ bytes: [UInt8], name: String, in directory: Inode) throws -> Int {
        let extent = try image.extent(of: directory, containing: 0)
        let blockStart: Int
        switch extent.storage {
        case .device(_, let offset, _): blockStart = Int(offset)
        case .metadata(let location): blockStart = Int(location.offset)
        case .hole: throw EROFSError(.corrupted, "directory is a hole")
        }
        let entries = try image.entries(of: directory)
        let index = try #require(entries.firstIndex { $0.nameString == name })
        return blockStart + index * 12
    }

    @Test func directoryCyclesAreCaught() throws {
        let (_, pristine) = try Self.images()[0]
        let image = try Image(source: MemoryImageSource(pristine))
        let root = try image.root()
        let d = try image.resolve("d")
        for target in [root.nid, d.nid] {
            var bytes = pristine
            let offset = try Self.direntOffset(image, bytes, name: "e", in: d)
            for index in 0..<8 { bytes[offset + index] = UInt8(truncatingIfNeeded: target >> (8 * UInt64(index))) }
            let error = Self.exercise(bytes)
            #expect(error?.code == .corrupted)
            #expect(error?.message.contains("cycle") == true)
        }
    }

    @Test func lyingSizesAreRefused() throws {
        let (_, pristine) = try Self.images()[1]  // chunk indexes
        let image = try Image(source: MemoryImageSource(pristine))
        for name in ["blocks", "inline", "d"] {
            let inode = try image.resolve(name)
            var bytes = pristine
            let sizeOffset = Int(inode.location.offset) + 8
            let width = inode.isExtended ? 8 : 4
            for index in 0..<width { bytes[sizeOffset + index] = index == width - 1 ? 0x7F : 0xFF }
            #expect(Self.exercise(bytes)?.code == .corrupted, "\(name)")
        }
    }
}
