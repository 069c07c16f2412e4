import Crypto
import EROFS

/// The sha256 of a file's bytes: the fingerprint of `digest` mode, the check of `verify` mode (the kernel
/// trusts an image's label; PageShare need not), and what tools such as `share-report` compare.
public enum ContentDigest {
    /// The sha256 of `inode`'s bytes, read in 256 KiB steps.
    public static func sha256(_ image: Image, _ inode: Inode) throws -> [UInt8] {
        var hasher = SHA256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 18, alignment: 16)
        defer { buffer.deallocate() }
        try image.readSequentially(inode, using: buffer, context: ReadContext()) { chunk in
            hasher.update(bufferPointer: chunk)
        }
        return Array(hasher.finalize())
    }

    /// Whether `inode`'s bytes hash to the digest of a `sha256:` fingerprint value; false for values of
    /// another form, which cannot be checked.
    static func matches(_ image: Image, _ inode: Inode, fingerprint: [UInt8]) throws -> Bool {
        guard let digest = FingerprintValue.sha256Digest(fingerprint) else { return false }
        return try Self.sha256(image, inode) == digest
    }

    /// Checks `inode`'s ishare fingerprint for ``Image/checkAll(maximumBytesPerFile:maximumProblems:verifyingFile:)``:
    /// false when it has none or one of another form than `sha256:` (nothing to check), true when the
    /// content matches.
    /// - Throws: `EROFSError` (`corrupted`) when the content does not match the fingerprint.
    public static func verifyFingerprint(_ image: Image, _ inode: Inode) throws -> Bool {
        guard let value = inode.fingerprint, let digest = FingerprintValue.sha256Digest(value) else { return false }
        guard try Self.sha256(image, inode) == digest else {
            throw EROFSError(.corrupted, "content does not match its sha256: fingerprint", nid: inode.nid)
        }
        return true
    }
}
