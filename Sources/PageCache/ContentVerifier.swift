import Crypto
import EROFS

/// Checks a file's content against its sha256 fingerprint before the file may share a dedup inode
/// (`verify` mode: the kernel trusts the image's label; PageShare need not).
enum ContentVerifier {
    /// Whether the sha256 of `inode`'s bytes equals `fingerprint`.
    static func matches(_ image: Image, _ inode: Inode, fingerprint: [UInt8]) throws -> Bool {
        guard fingerprint.count == SHA256.byteCount else { return false }
        return try Self.digest(image, inode) == fingerprint
    }

    /// The sha256 of `inode`'s bytes, read in 256 KiB steps.
    static func digest(_ image: Image, _ inode: Inode) throws -> [UInt8] {
        var hasher = SHA256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 18, alignment: 16)
        defer { buffer.deallocate() }
        try image.readSequentially(inode, using: buffer, context: ReadContext()) { chunk in
            hasher.update(bufferPointer: chunk)
        }
        return Array(hasher.finalize())
    }
}

/// The sha256 of a file's bytes, for tools outside the cache (reports, checks).
public enum ContentDigest {
    /// The sha256 of `inode`'s bytes.
    public static func sha256(_ image: Image, _ inode: Inode) throws -> [UInt8] {
        try ContentVerifier.digest(image, inode)
    }
}
