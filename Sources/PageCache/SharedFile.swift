import EROFS
import Synchronization

/// What makes two files the same cached content: the domain, the fingerprint value (the ishare xattr's
/// bytes, or `sha256:` and the digest PageShare computed, as mkfs.erofs writes it) and the size (the kernel's
/// `erofs_ishare_fill_inode` also refuses to share on a size mismatch), or one image's own inode.
enum FileKey: Hashable, Sendable {
    case shared(domain: TrustDomain, fingerprint: [UInt8], size: UInt64)
    case privateFile(image: ObjectIdentifier, nid: UInt64)
}

/// One image's view of a shared file: where its bytes can be read from.
struct Sharer: Sendable {
    let imageID: String
    let image: Image
    let inode: Inode
}

/// A dedup inode: one cached copy of content that one or more attached images hold.
final class SharedFile: Sendable {
    let id: UInt64
    let key: FileKey
    let size: UInt64
    /// The content's SHA-256 when the key says it (a `sha256:` fingerprint); the entity tag is made from it.
    let contentDigest: [UInt8]?
    let counters: DomainCounters
    let sharers: Mutex<[Sharer]>
    let residentPages = Atomic<Int>(0)
    /// Where the last read of this content ended (sequential access detection for readahead).
    let lastReadEnd = Atomic<UInt64>(0)
    /// Page index up to which readahead has been scheduled.
    let readaheadEnd = Atomic<UInt64>(0)
    /// The file's chunks, when content is shared by chunk; nil when by file (pages).
    let chunkMap: ChunkMap?

    init(id: UInt64, key: FileKey, size: UInt64, counters: DomainCounters, first: Sharer, chunkMap: ChunkMap? = nil) {
        self.id = id
        self.chunkMap = chunkMap
        self.key = key
        self.size = size
        if case .shared(_, let fingerprint, _) = key {
            self.contentDigest = FingerprintValue.sha256Digest(fingerprint)
        } else {
            self.contentDigest = nil
        }
        self.counters = counters
        self.sharers = Mutex([first])
    }

    var sharerCount: Int { self.sharers.withLock { $0.count } }
}
