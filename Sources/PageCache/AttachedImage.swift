import EROFS
import Synchronization

/// An attached image and the dedup inodes its reads have touched.
final class AttachedImage: Sendable {
    let id: String
    let image: Image
    /// The image's stamp, kept apart so that a read need not copy the image (a reference count per field).
    let stamp: ImageStamp
    let domain: TrustDomain
    let mode: FingerprintMode
    let verify: Bool
    let counters: DomainCounters
    /// Digests computed ahead of reads (`digest` mode).
    let digestTable = DigestTable()
    let imageCounters = ImageCounters()
    /// Set once, when the image's file is found written to; reads check it without a lock.
    let isChanged = Atomic<Bool>(false)
    private let change = Mutex<String?>(nil)
    private let resolvedPaths = ResolvedPaths()
    private let files = Mutex<[UInt64: SharedFile]>([:])

    init(
        id: String, image: Image, domain: TrustDomain, mode: FingerprintMode, verify: Bool, counters: DomainCounters
    ) {
        self.id = id
        self.image = image
        self.stamp = image.superBlock.stamp
        self.domain = domain
        self.mode = mode
        self.verify = verify
        self.counters = counters
    }

    /// Why the image was marked changed, or nil.
    var changeReason: String? { self.change.withLock { $0 } }

    /// Marks the image changed; false when it already was.
    func markChanged(_ reason: String) -> Bool {
        let first = self.change.withLock { change -> Bool in
            guard change == nil else { return false }
            change = reason
            return true
        }
        if first { self.isChanged.store(true, ordering: .releasing) }
        return first
    }

    func file(for nid: UInt64) -> SharedFile? { self.files.withLock { $0[nid] } }

    /// The inode of `path` (symlinks followed inside the image), remembered: a repeated lookup costs a hash
    /// and one striped lock instead of a directory walk with image reads.
    func resolve(_ path: String) throws -> Inode {
        try self.resolvedEntry(path).inode
    }

    /// `path`'s inode and, once it was opened for reading, its shared file (``rememberOpened(_:nid:for:)``).
    func resolvedEntry(_ path: String) throws -> ResolvedPaths.Entry {
        try self.resolvedPaths.entry(for: path) { try self.image.resolve(path) }
    }

    /// Keeps `file`, opened for inode `nid`, with `path`'s resolved entry: the next read of the path finds
    /// it there, without the image's file table.
    func rememberOpened(_ file: SharedFile, nid: UInt64, for path: String) {
        self.resolvedPaths.remember(file, nid: nid, for: path)
    }
    func remember(_ file: SharedFile, for nid: UInt64) { self.files.withLock { $0[nid] = file } }
    func touchedFiles() -> [SharedFile] { self.files.withLock { Array($0.values) } }
}
