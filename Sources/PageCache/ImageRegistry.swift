import EROFS
import Synchronization

/// The one list of what the cache serves: the attached images, the fingerprint domains with their counters,
/// quotas and unit of sharing, and the shared files (dedup inodes) the images' reads have opened.
///
/// Control-plane state behind one lock, taken once per open or admin call, never per page or chunk. The
/// admin side (the catalog, the admin API) reads images, domains and quotas here; the cache's stores hold
/// only content.
public final class ImageRegistry: Sendable {
    private let state = Mutex(State())
    /// Bumped, under the lock, by every attach and detach: a lookup remembered at one value is still right
    /// while it holds (``ImageLookup``).
    private let generation = Atomic<UInt64>(0)
    private let defaultSharing: SharingUnit
    private let domainSharing: [TrustDomain: SharingUnit]

    private struct State: ~Copyable {
        /// Attached images by id, compared as bytes.
        var images: [ByteKey: AttachedImage] = [:]
        var files: [FileKey: SharedFile] = [:]
        var domains: [TrustDomain: DomainCounters] = [:]
        var nextFileID: UInt64 = 1
    }

    init(sharing: SharingUnit, domainSharing: [TrustDomain: SharingUnit]) {
        self.defaultSharing = sharing
        self.domainSharing = domainSharing
    }

    /// What an attached image is, for the admin side.
    public struct Attachment: Sendable {
        public let id: String
        public let image: Image
        public let domain: TrustDomain
        public let mode: FingerprintMode
        public let verify: Bool
        /// Why the image was marked changed on disk (its reads fail), or nil.
        public let changeReason: String?
    }

    /// Image `id` as attached, or nil.
    public func attachment(id: String) -> Attachment? {
        guard let attached = self.state.withLock({ $0.images[ByteKey(id)] }) else { return nil }
        return Attachment(
            id: attached.id, image: attached.image, domain: attached.domain, mode: attached.mode,
            verify: attached.verify, changeReason: attached.changeReason)
    }

    /// Ids of the attached images.
    public var imageIDs: [String] { self.state.withLock { $0.images.keys.map(\.string).sorted() } }

    /// Ids of the attached images of each domain that has one, sorted.
    public var imageIDsByDomain: [TrustDomain: [String]] {
        self.state.withLock { state in
            state.images.values.reduce(into: [:]) { $0[$1.domain, default: []].append($1.id) }
        }.mapValues { $0.sorted() }
    }

    /// The domains known (those of attached images, past or present, and those given a quota).
    public var domains: [TrustDomain] {
        self.state.withLock { Array($0.domains.keys) }.sorted { $0.name < $1.name }
    }

    /// What `domain` shares by.
    public func sharing(for domain: TrustDomain) -> SharingUnit { self.domainSharing[domain] ?? self.defaultSharing }

    /// `domain`'s quota in bytes (nil: none).
    public func quota(for domain: TrustDomain) -> Int? { self.state.withLock { $0.domains[domain]?.quota } }

    /// Limits `domain`'s resident bytes (nil: no limit); see ``SharedPageCache/setQuota(_:for:)``.
    public func setQuota(_ bytes: Int?, for domain: TrustDomain) { self.counters(for: domain).quota = bytes }

    /// The counters of `domain`, made on first use.
    func counters(for domain: TrustDomain) -> DomainCounters {
        self.state.withLock { self.counters(for: domain, in: &$0) }
    }

    private func counters(for domain: TrustDomain, in state: inout State) -> DomainCounters {
        if let counters = state.domains[domain] { return counters }
        let counters = DomainCounters(chunkScope: UInt32(state.domains.count + 1), sharing: self.sharing(for: domain))
        state.domains[domain] = counters
        return counters
    }

    // MARK: Images

    /// Adds `image` as `id` in `domain`.
    /// - Throws: ``PageCacheError`` (`imageExists`) when `id` is taken.
    func attach(_ image: Image, id: String, domain: TrustDomain, mode: FingerprintMode, verify: Bool) throws {
        try self.state.withLock { state in
            guard state.images[ByteKey(id)] == nil else {
                throw PageCacheError(.imageExists, "image \(id) is already attached")
            }
            let counters = self.counters(for: domain, in: &state)
            state.images[ByteKey(id)] = AttachedImage(
                id: id, image: image, domain: domain, mode: mode, verify: verify, counters: counters)
            self.generation.add(1, ordering: .releasing)
        }
    }

    /// Removes `id`; returns the files no attached image holds any more.
    /// - Throws: ``PageCacheError`` (`unknownImage`).
    func detach(id: String) throws -> [SharedFile] {
        try self.state.withLock { state in
            guard let attached = state.images.removeValue(forKey: ByteKey(id)) else {
                throw PageCacheError(.unknownImage, "no image \(id) is attached")
            }
            self.generation.add(1, ordering: .releasing)
            return Self.withdraw(attached, from: &state)
        }
    }

    /// Marks the attachment of `id` (of `image`'s file when given) changed on disk; returns the files no
    /// attached image holds any more, or nil when it was not attached or already marked.
    func markChanged(id: String, image: Image?, reason: String) -> [SharedFile]? {
        self.state.withLock { state in
            guard let attached = state.images[ByteKey(id)], image.map({ $0.file === attached.image.file }) ?? true,
                attached.markChanged(reason)
            else { return nil }
            return Self.withdraw(attached, from: &state)
        }
    }

    /// Removes `attached` from the sharers of the files it touched; returns the files left without one.
    private static func withdraw(_ attached: AttachedImage, from state: inout State) -> [SharedFile] {
        let id = ByteKey(attached.id)
        var orphans: [SharedFile] = []
        for file in attached.touchedFiles() {
            let remaining = file.sharers.withLock { sharers -> Int in
                sharers.removeAll { ByteKey($0.imageID) == id }
                return sharers.count
            }
            if remaining == 0 {
                state.files.removeValue(forKey: file.key)
                orphans.append(file)
            }
        }
        return orphans
    }

    /// Attached image `id`; for `reading`, one marked changed on disk is refused with `imageChanged`.
    /// - Parameter visible: whether the caller may see images of a domain; one it may not is reported exactly
    ///   like one that is not attached.
    func attached(
        _ id: String, visible: (TrustDomain) -> Bool = { _ in true }, reading: Bool = true
    ) throws -> AttachedImage {
        try self.checked(self.state.withLock({ $0.images[ByteKey(id)] }), id, visible: visible, reading: reading)
    }

    /// As ``attached(_:visible:reading:)``, answered from `lookup` when it remembers `id` and no image was
    /// attached or detached since; `lookup` remembers the answer otherwise.
    func attached(
        _ id: String, visible: (TrustDomain) -> Bool, reading: Bool, lookup: inout ImageLookup
    ) throws -> AttachedImage {
        // Loaded before the lookup: a change after it makes the remembered answer stale at the next request.
        let generation = self.generation.load(ordering: .acquiring)
        if let remembered = lookup.image(id, generation: generation) {
            return try self.checked(remembered, id, visible: visible, reading: reading)
        }
        let found = self.state.withLock { $0.images[ByteKey(id)] }
        lookup = ImageLookup(generation: found == nil ? .max : generation, attached: found)
        return try self.checked(found, id, visible: visible, reading: reading)
    }

    /// `attached` if the caller may see it (one it may not is reported exactly like one that is not
    /// attached) and, for `reading`, it is not marked changed on disk.
    private func checked(
        _ attached: AttachedImage?, _ id: String, visible: (TrustDomain) -> Bool, reading: Bool
    ) throws -> AttachedImage {
        guard let attached, visible(attached.domain) else {
            throw PageCacheError(.unknownImage, "no image \(id) is attached")
        }
        if reading, attached.isChanged.load(ordering: .acquiring) {
            throw PageCacheError(.imageChanged, attached.changeReason ?? "image \(id) changed on disk")
        }
        return attached
    }

    // MARK: Shared files

    /// The shared file of content `key` with `sharer` among its sharers: the existing one, or a new one made
    /// by `make` (given its id).
    func share(_ key: FileKey, sharer: Sharer, make: (UInt64) -> SharedFile) -> SharedFile {
        self.state.withLock { state in
            if let existing = state.files[key] {
                existing.sharers.withLock { sharers in
                    let imageID = ByteKey(sharer.imageID)
                    if !sharers.contains(where: { ByteKey($0.imageID) == imageID && $0.inode.nid == sharer.inode.nid })
                    {
                        sharers.append(sharer)
                    }
                }
                return existing
            }
            let file = make(state.nextFileID)
            state.nextFileID += 1
            state.files[key] = file
            return file
        }
    }

    /// The shared files of `domain`.
    func files(in domain: TrustDomain) -> [SharedFile] {
        self.state.withLock { state in
            guard let counters = state.domains[domain] else { return [] }
            return state.files.values.filter { $0.counters === counters }
        }
    }

    /// Everything at one instant, for accounting.
    struct Snapshot {
        var images: [AttachedImage]
        var domains: [TrustDomain: DomainCounters]
        var files: [SharedFile]
    }

    var snapshot: Snapshot {
        self.state.withLock {
            Snapshot(images: Array($0.images.values), domains: $0.domains, files: Array($0.files.values))
        }
    }

    /// How many images are attached and how many shared files are known.
    var counts: (images: Int, files: Int) { self.state.withLock { ($0.images.count, $0.files.count) } }
}
