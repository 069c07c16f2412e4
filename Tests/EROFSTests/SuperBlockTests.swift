import EROFSTestSupport
import Testing

@testable import EROFS

@Suite("Superblock")
struct SuperBlockTests {
    /// A small image's bytes (default mkfs options: sb_csum on).
    static func smallImage(_ options: [String] = []) throws -> [UInt8] {
        let image = try TestImage(options: options) { source in
            try TestTree.write(source + "/a", Array("alpha\n".utf8))
            try TestTree.make(source + "/d")
            try TestTree.write(source + "/d/b", TestTree.pattern(10_000, seed: 1))
        }
        defer { image.remove() }
        return try image.bytes()
    }

    /// Rewrites the superblock checksum after a mutation, so the mutation itself is what gets checked.
    static func resealed(_ bytes: [UInt8]) -> [UInt8] { ImagePatch.resealed(bytes) }

    static func open(_ bytes: [UInt8]) throws -> Image { try Image(source: MemoryImageSource(bytes)) }

    @Test func readsTheFieldsMkfsWrote() throws {
        let image = try Self.open(try Self.smallImage())
        let superBlock = image.superBlock
        #expect(superBlock.blockSize == 4096)
        #expect(superBlock.compatFeatures.contains(.superBlockChecksum))
        #expect(superBlock.incompatFeatures.isEmpty)
        #expect(superBlock.inodeCount == 4)
        #expect(superBlock.uuidString.count == 36)
        let stamp = superBlock.stamp
        #expect(stamp.withUUIDBytes { Array($0) } == superBlock.uuid, "the stamp's uuid is the superblock's, in order")
        #expect(stamp.epoch == superBlock.epoch && stamp.checksum == superBlock.checksum)
        #expect(try image.root().fileType == .directory)
        #expect(try image.check().inodes == 4)
    }

    @Test func refusesWhatIsNotEROFS() throws {
        var bytes = try Self.smallImage()
        bytes[1024] ^= 0xFF
        #expect(throws: EROFSError(.notEROFS, "")) { try Self.open(bytes) }
        #expect(throws: EROFSError(.notEROFS, "")) { try Self.open([UInt8](repeating: 0, count: 100)) }
        #expect(throws: EROFSError(.notEROFS, "")) { try Self.open([]) }
        #expect(throws: EROFSError(.notEROFS, "")) { try Self.open([UInt8](repeating: 0, count: 8192)) }
    }

    @Test func namesUnknownIncompatibleFeatures() throws {
        var bytes = try Self.smallImage()
        bytes[1024 + 0x51] |= 0x02  // bit 9 = 0x200, not defined by Linux 6.18
        let error = try #require(throws: EROFSError.self) { try Self.open(Self.resealed(bytes)) }
        #expect(error.code == .unsupportedFeature)
        #expect(error.message.contains("unknown(0x200)"))
    }

    @Test func unknownCompatibleFeaturesAreIgnored() throws {
        var bytes = try Self.smallImage()
        bytes[1024 + 0x0B] |= 0x80
        let image = try Self.open(Self.resealed(bytes))
        #expect(image.superBlock.compatFeatures.names.contains("unknown(0x80000000)"))
    }

    @Test func verifiesTheChecksumWhenTheFeatureIsSet() throws {
        var bytes = try Self.smallImage()
        bytes[1024 + 0x7A] ^= 0x01  // a reserved byte covered by the checksum
        let error = try #require(throws: EROFSError.self) { try Self.open(bytes) }
        #expect(error.code == .corrupted)
        #expect(error.message.contains("checksum"))
        // Without the feature bit nothing is verified.
        var unchecked = try Self.smallImage(["-Enosbcrc"])
        #expect(!(try Self.open(unchecked)).superBlock.compatFeatures.contains(.superBlockChecksum))
        unchecked[1024 + 0x7A] ^= 0x01
        _ = try Self.open(unchecked)
    }

    @Test(arguments: [UInt8(8), 17, 0, 255])
    func refusesBlockSizesOutsideTheFormat(bits: UInt8) throws {
        var bytes = try Self.smallImage()
        bytes[1024 + 0x0C] = bits
        #expect(throws: EROFSError(.unsupported, "")) { try Self.open(bytes) }
    }

    @Test func refusesDirectoryBlockBitsAndBadPrefixIDs() throws {
        var bytes = try Self.smallImage()
        bytes[1024 + 0x5A] = 1
        #expect(throws: EROFSError(.unsupported, "")) { try Self.open(Self.resealed(bytes)) }
        bytes = try Self.smallImage()
        bytes[1024 + 0x08] |= 0x20  // ISHARE_XATTRS with no long prefixes at all
        #expect(throws: EROFSError(.corrupted, "")) { try Self.open(Self.resealed(bytes)) }
        bytes = try Self.smallImage()
        bytes[1024 + 0x28] = 0xFF  // meta_blkaddr far past the end
        #expect(throws: EROFSError(.corrupted, "")) { try Self.open(Self.resealed(bytes)) }
    }

    @Test func metaboxFeatureNeedsAnExtensionSlot() throws {
        var bytes = try Self.smallImage()
        bytes[1024 + 0x51] |= 0x01  // METABOX (0x100) without sb_extslots
        #expect(throws: EROFSError(.corrupted, "")) { try Self.open(Self.resealed(bytes)) }
    }
}
