import EROFS
import EROFSTestSupport
import Synchronization
import Testing

/// The metabox and the packed inode are decoded once per block while their blocks stay held, not once per
/// inode record, dirent block or fragment read.
@Suite("Decoded metadata blocks", .enabled(if: Fixtures.isAvailable, "needs ../shared/fixtures"))
struct DecodedBlockTests {
    /// An image file that counts the bytes read from it.
    final class CountingSource: ImageSource {
        let file: FileImageSource
        let bytesRead = Atomic<Int>(0)
        let reads = Atomic<Int>(0)
        init(_ path: String) throws { self.file = try FileImageSource(path: path) }
        var size: UInt64 { self.file.size }
        func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
            self.bytesRead.add(buffer.count, ordering: .relaxed)
            self.reads.add(1, ordering: .relaxed)
            try self.file.read(into: buffer, at: offset)
        }
    }

    @Test(
        "walking every inode, xattr and directory reads each metadata byte about once",
        arguments: ["z-metabox", "z-metabox-lzma", "z-dircompr", "z-xattr-frag"])
    func metadataIsDecodedOnce(name: String) throws {
        let manifest = try Fixtures.manifest(name)
        let source = try CountingSource(manifest.imagePath)
        let image = try Image(source: source)
        let report = try image.check(maximumBytesPerFile: 0)
        #expect(report.inodes == manifest.files.count)
        let read = source.bytesRead.load(ordering: .relaxed)
        #expect(read <= Int(source.size) * 2, "\(name): \(read) bytes read for a \(source.size)-byte image")
        #expect(image.decodedMetadataBytes > 0)
    }

    @Test("a limit of one block still reads correctly, only slower")
    func tinyLimitStillReadsCorrectly() throws {
        let manifest = try Fixtures.manifest("z-metabox")
        let image = try Image(source: try FileImageSource(path: manifest.imagePath), decodedBlockLimit: 1)
        #expect(compareManifests(try manifestOfImage(image), manifest.files).isEmpty)
        #expect(image.decodedMetadataBytes <= 2 * image.superBlock.blockSize)
    }

    /// 4-byte encoded extent records are scanned from the file's first (their addresses accumulate), so
    /// each mapping reads the records up to its own in one piece, not one read per record.
    @Test func encodedExtentRecordsAreReadInOnePiece() throws {
        let manifest = try Fixtures.manifest("z-zstd-48bit")
        let source = try CountingSource(manifest.imagePath)
        let report = try Image(source: source).check()
        let reads = source.reads.load(ordering: .relaxed)
        let blocks = Int(source.size) / 4096
        #expect(report.bytesRead > 4 << 20)
        // About 5,000 (inode records, pclusters, record runs); one read per record made it 336,000.
        #expect(reads <= 20 * blocks, "\(reads) reads of a \(blocks)-block image")
    }
}
