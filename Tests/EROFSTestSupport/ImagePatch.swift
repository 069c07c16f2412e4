import EROFS
import Foundation

/// Byte patches of real images for hostile-input tests: replace bytes, then re-seal the superblock
/// checksum so that the image still opens and the damage is met where it lies.
public enum ImagePatch {
    /// `bytes` with the first occurrence of `old` replaced by `new` (of the same length), re-sealed; nil
    /// when `old` does not occur.
    public static func replacing(_ old: [UInt8], with new: [UInt8], in bytes: [UInt8]) -> [UInt8]? {
        precondition(old.count == new.count && !old.isEmpty)
        guard
            let start = (0...(bytes.count - old.count)).first(where: { bytes[$0..<$0 + old.count].elementsEqual(old) })
        else { return nil }
        var patched = bytes
        patched.replaceSubrange(start..<start + old.count, with: new)
        return Self.resealed(patched)
    }

    /// `bytes` with `sb_chksum` recomputed: crc32c over the superblock's block from byte 1024, the field
    /// zeroed (the kernel's `erofs_superblock_csum_verify`).
    public static func resealed(_ bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        let blockSize = 1 << Int(bytes[1024 + 12])
        let length = blockSize > 1024 ? blockSize - 1024 : blockSize
        guard bytes.count >= 1024 + length else { return bytes }
        for index in 1028..<1032 { bytes[index] = 0 }
        var crc: UInt32 = ~0
        for byte in bytes[1024..<1024 + length] {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        }
        for index in 0..<4 { bytes[1028 + index] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(index))) }
        return bytes
    }
}

extension ImagePatch {
    /// `ishare-plain-A` of the fixtures with one byte of a file's stored content changed, so that the file
    /// no longer matches its `sha256:` fingerprint; and that file's path.
    public static func forgedIshareFixture() throws -> (bytes: [UInt8], path: String) {
        let manifest = try Fixtures.manifest("ishare-plain-A")
        let image = try Image(path: manifest.imagePath)
        let entry = manifest.files.first { $0.type == "file" && $0.size > 5000 }!
        let content = try image.readBytes(try image.resolve(entry.path), count: 64)
        var forged = content
        forged[10] ^= 0xFF
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: manifest.imagePath)))
        guard let patched = Self.replacing(content, with: forged, in: bytes) else {
            throw ToolFailure(tool: "patch", message: "content of \(entry.path) not found in the image")
        }
        return (patched, entry.path)
    }
}
