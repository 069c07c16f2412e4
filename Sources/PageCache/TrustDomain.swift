import EROFS

/// A fingerprint domain (the kernel's `domain_id`): content is shared only between images of one domain.
public struct TrustDomain: Hashable, Sendable, CustomStringConvertible {
    public let name: String

    /// Creates a domain; names are 1–255 printable ASCII characters.
    /// - Throws: ``PageCacheError`` (`invalidArgument`) for other names.
    public init(_ name: String) throws {
        guard !name.isEmpty, name.utf8.count <= 255, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw PageCacheError(.invalidArgument, "domain name must be 1-255 printable ASCII characters")
        }
        self.name = name
    }

    public var description: String { self.name }
}

/// How an image's files are identified for sharing.
public enum FingerprintMode: String, Sendable, Hashable, CaseIterable {
    /// The image's ishare fingerprint xattr (what `mkfs.erofs --xattr-inode-digest` writes) + the domain;
    /// files without one are cached privately.
    case xattr
    /// PageShare computes each file's sha256 itself (on the file's first read) + the domain: for images built
    /// without fingerprint xattrs, or not trusted to label their own content.
    case digest
    /// No sharing: the image's files are cached privately (still through the cache, still budgeted).
    case none
}
