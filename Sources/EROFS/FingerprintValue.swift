/// The value of an ishare fingerprint xattr (the one the superblock's `ishare_xattr_prefix_id` names).
///
/// The kernel compares values as opaque bytes (the sharing key is the value followed by the domain id).
/// mkfs.erofs 1.9 writes `sha256:` followed by the 32 raw bytes of the content's SHA-256; that form is the
/// only one a reader can check against the content.
public enum FingerprintValue {
    static let sha256Prefix: [UInt8] = Array("sha256:".utf8)
    static let sha256DigestSize = 32

    /// The SHA-256 digest a `sha256:` value carries; nil for values of any other form.
    public static func sha256Digest(_ value: [UInt8]) -> [UInt8]? {
        guard value.count == Self.sha256Prefix.count + Self.sha256DigestSize, value.starts(with: Self.sha256Prefix)
        else { return nil }
        return Array(value[Self.sha256Prefix.count...])
    }

    /// The value mkfs.erofs writes for content whose SHA-256 is `digest`.
    public static func sha256(_ digest: [UInt8]) -> [UInt8] { Self.sha256Prefix + digest }
}
