import EROFS
import Foundation
import Logging
import Metrics
import Synchronization

/// The node-wide page cache: decoded file bytes, one copy per content within a fingerprint domain, under a
/// hard byte budget. A façade over its parts: the ``ImageRegistry`` (images, domains, quotas, shared files),
/// the page store (`PageStore`, `PageReads.swift`: whole files held in fixed-size pages, the userspace form
/// of the kernel's page cache share) and the chunk store (`ChunkStore`, `Chunks/`: files cut into
/// content-defined chunks, equal chunks — bytes compared — held once), fills from the images
/// (`SharedPageCache+Fill.swift`), readahead (`ReadaheadTasks`) and accounting
/// (`SharedPageCache+Accounting.swift`).
///
/// Reads run on the cache's own ``fillExecutor`` whoever calls them: a hit copies (or lends) under its
/// shard's lock; a miss is filled once (single flight: other readers wait for it) from whichever attached
/// image holds the content, falling back to the next one if a read fails. The event-loop fast paths
/// (``CachedFile/readResident(at:into:)``, ``CachedFile/borrowResident(at:maxBytes:)``) never wait or read.
public final class SharedPageCache: Sendable {
    /// Sizing of the cache.
    public struct Configuration: Sendable {
        /// Hard budget for page data, in bytes.
        public var budgetBytes: Int
        /// Page size (4 KiB to 64 KiB, a power of two).
        public var pageSize: Int
        /// Lock stripes (rounded to a power of two).
        public var shardCount: Int
        /// Pages read ahead, in the background, after a read that continues the previous one (0: off).
        public var readaheadPages: Int
        /// Threads of the ``fillExecutor``.
        public var fillThreads: Int
        /// What content is shared by inside a domain: whole files (pages of equal files) or chunks.
        public var sharing: SharingUnit
        /// Domains that share otherwise than ``sharing`` says. One budget holds them all: when any domain
        /// shares by chunk, the chunk store holds it, and the files of a domain sharing whole files are kept
        /// there as private pieces (equal files still share them, nothing else does).
        public var domainSharing: [TrustDomain: SharingUnit] = [:]
        /// Average size of content-defined chunks (``SharingUnit/chunk``), a power of two from 1 KiB.
        public var chunkAverageBytes: Int
        /// Where shared files' chunk maps are kept across restarts (created 0700 if missing); nil: not kept.
        public var chunkMapDirectory: String? = nil
        /// Kept chunk maps not used for this long are removed when the cache is made.
        public var chunkMapRetention: Duration = .seconds(30 * 24 * 3600)
        /// Every chunk identity made equal, so that only the byte comparison keeps different chunks apart
        /// (tests of that guard).
        var collidingChunkIdentities = false

        public init(
            budgetBytes: Int, pageSize: Int = 4096, shardCount: Int = 64, readaheadPages: Int = 16,
            fillThreads: Int = max(2, ProcessInfo.processInfo.activeProcessorCount), sharing: SharingUnit = .file,
            chunkAverageBytes: Int = 4096
        ) {
            self.budgetBytes = budgetBytes
            self.pageSize = pageSize
            self.shardCount = shardCount
            self.readaheadPages = readaheadPages
            self.fillThreads = fillThreads
            self.sharing = sharing
            self.chunkAverageBytes = chunkAverageBytes
        }

        /// Whether the chunk store holds the budget (some domain shares by chunk); else the page store does.
        var usesChunkStore: Bool { self.sharing == .chunk || self.domainSharing.values.contains(.chunk) }
    }

    public let configuration: Configuration
    let logger: Logger
    /// The threads reads and fills run on (reads move there themselves); other blocking work of the cache's
    /// users (an image's full check) may run there too: `Task(executorPreference: cache.fillExecutor)`.
    public let fillExecutor: FillExecutor
    /// The attached images, domains and shared files.
    public let registry: ImageRegistry
    /// Content shared by whole file; holds the budget when no domain shares by chunk.
    let pages: PageStore
    /// Content shared by chunk (and the private pieces of domains sharing whole files beside them); holds
    /// the budget when some domain shares by chunk.
    let chunkStore: ChunkStore
    private let chunkMapArchive: ChunkMapArchive?
    let metrics = CacheMetrics()
    let decompressionMetrics = DecompressionMetrics()
    let imageMetrics = ImageMetrics()
    /// Reads of an image that failed during fills (each sharer tried counts once).
    let readErrors = Atomic<Int>(0)
    /// Readahead in flight, so that ``drainReadahead()`` (tests, shutdown) can wait for it.
    let readahead: ReadaheadTasks

    /// Creates an empty cache.
    /// - Throws: ``PageCacheError`` (`invalidArgument`) for a page size that is not a power of two in 4 KiB
    ///   ... 64 KiB, or a budget smaller than one page per shard.
    public init(configuration: Configuration, logger: Logger = Logger(label: "pageshare.cache")) throws {
        let pageSize = configuration.pageSize
        guard pageSize >= 4096, pageSize <= 65536, pageSize & (pageSize - 1) == 0 else {
            throw PageCacheError(.invalidArgument, "page size \(pageSize) is not a power of two in 4 KiB...64 KiB")
        }
        let average = configuration.chunkAverageBytes
        guard average >= 1024, average <= 65536, average & (average - 1) == 0 else {
            throw PageCacheError(
                .invalidArgument, "chunk average size \(average) is not a power of two in 1 KiB...64 KiB")
        }
        self.configuration = configuration
        self.logger = logger
        self.registry = ImageRegistry(sharing: configuration.sharing, domainSharing: configuration.domainSharing)
        let chunker = ContentDefinedChunker(averageBytes: average)
        switch configuration.usesChunkStore {
        case false:
            self.pages = try PageStore(
                budgetBytes: configuration.budgetBytes, pageSize: pageSize, shardCount: configuration.shardCount)
            self.chunkStore = ChunkStore(budgetBytes: 0, shardCount: 1, chunker: chunker)
        case true:
            guard configuration.budgetBytes >= chunker.maximumBytes else {
                throw PageCacheError(
                    .invalidArgument,
                    "budget of \(configuration.budgetBytes) bytes holds no \(chunker.maximumBytes)-byte chunk")
            }
            self.pages = PageStore(unusedWithPageSize: pageSize)
            self.chunkStore = ChunkStore(
                budgetBytes: configuration.budgetBytes, shardCount: configuration.shardCount, chunker: chunker,
                collidingIdentities: configuration.collidingChunkIdentities)
        }
        if let directory = configuration.chunkMapDirectory {
            do {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw PageCacheError(.invalidArgument, "cannot create the chunk map directory \(directory): \(error)")
            }
            self.chunkMapArchive = ChunkMapArchive(directory: directory)
            let removed = ChunkMapArchive.sweep(directory, unusedFor: configuration.chunkMapRetention)
            if removed > 0 {
                logger.info("removed chunk maps unused for the retention period", metadata: ["count": "\(removed)"])
            }
        } else {
            self.chunkMapArchive = nil
        }
        self.fillExecutor = FillExecutor(threads: configuration.fillThreads)
        self.readahead = ReadaheadTasks(executor: self.fillExecutor)
    }

    deinit { self.fillExecutor.shutdown() }

    // MARK: Images

    /// Attaches `image` as `id` in `domain`. Cheap: no file is read until it is.
    ///
    /// With `verify`, a file of this image joins shared content only after its bytes hash to its
    /// fingerprint (sha256); a file that does not is cached privately and counted in
    /// ``DomainStatistics/verifyFailures``.
    /// - Throws: ``PageCacheError`` (`imageExists`) when `id` is taken.
    public func attach(
        _ image: Image, id: String, domain: TrustDomain, mode: FingerprintMode, verify: Bool = false
    ) throws {
        try self.registry.attach(image, id: id, domain: domain, mode: mode, verify: verify)
    }

    /// Detaches `id`: its files stop being sharers; content no other image holds is dropped at once, shared
    /// content stays for the other sharers. Reads already in flight finish.
    public func detach(id: String) throws {
        self.forget(try self.registry.detach(id: id))
    }

    /// Marks image `id` as changed on disk (`reason`): it stops being a sharer of its files, content no other
    /// image holds is dropped at once (as on detach), and its reads fail with `imageChanged` until it is
    /// detached and attached again. Only the attachment of `image` is marked (not a later one of the same
    /// id). Returns whether this call marked it.
    @discardableResult
    public func markChanged(id: String, image: Image? = nil, reason: String) -> Bool {
        guard let orphans = self.registry.markChanged(id: id, image: image, reason: reason) else { return false }
        self.forget(orphans)
        self.logger.error(
            "image changed on disk: its reads fail until it is attached again",
            metadata: ["image": "\(id)", "reason": "\(reason)"])
        return true
    }

    /// Drops the pages and chunks of files no attached image holds any more, and their kept chunk maps.
    private func forget(_ orphans: [SharedFile]) {
        self.purgePages(of: orphans)
        for path in orphans.compactMap({ $0.chunkMap?.archivePath }) { unlink(path) }
    }

    /// Drops the resident pages of every file image `id` has read (shared ones too: other sharers refill
    /// them on their next read); returns the bytes dropped. The image stays attached.
    /// - Throws: ``PageCacheError`` (`unknownImage`).
    @discardableResult
    public func dropPages(imageID id: String) throws -> Int {
        let attached = try self.attachedImage(id, reading: false)
        return self.purgePages(of: attached.touchedFiles(), force: true)
    }

    /// Drops every resident page of `domain`; returns the bytes dropped.
    @discardableResult
    public func dropPages(domain: TrustDomain) -> Int {
        self.purgePages(of: self.registry.files(in: domain), force: true)
    }

    /// Removes the pages of `files` from every shard, and their chunks (those no other file holds, or with
    /// `force` all of them); returns the bytes removed.
    @discardableResult
    func purgePages(of files: [SharedFile], force: Bool = false) -> Int {
        guard !files.isEmpty else { return 0 }
        let ids = Set(files.map(\.id))
        let dropped = self.pages.purge(files: ids)
        for file in dropped { self.noteDropped(file) }
        return dropped.count * self.pages.pageSize + self.releaseChunks(of: files, force: force)
    }

    /// Limits `domain`'s resident bytes (nil: no limit). A domain at its quota replaces its own pages and
    /// never evicts another domain's; pages it cannot cache are read through without caching.
    public func setQuota(_ bytes: Int?, for domain: TrustDomain) {
        self.registry.setQuota(bytes, for: domain)
    }

    /// The image attached as `id`, for metadata (lookups, stat, listings) outside the cache.
    /// - Parameter visible: whether a caller may see images of a domain; an image it may not see is reported
    ///   exactly like one that is not attached.
    /// - Throws: ``PageCacheError`` (`unknownImage`).
    public func image(id: String, visible: (TrustDomain) -> Bool = { _ in true }) throws -> Image {
        try self.attachedImage(id, visible: visible).image
    }

    // MARK: Reads

    /// Opens `inode` of image `imageID` for reading through the cache: finds or creates its dedup inode.
    /// In `digest` mode (and with `verify`) the first open of a file hashes it; later opens are cheap.
    /// - Throws: ``PageCacheError``: `unknownImage`, `notARegularFile`; an `EROFSError` when hashing fails.
    public func open(imageID: String, inode: Inode) throws -> CachedFile {
        try self.open(try self.attachedImage(imageID), inode: inode)
    }

    private func open(_ attached: AttachedImage, inode: Inode) throws -> CachedFile {
        guard inode.fileType == .regular else {
            throw PageCacheError(.notARegularFile, "nid \(inode.nid) is not a regular file")
        }
        return CachedFile(
            cache: self, file: try self.sharedFile(attached, inode: inode), reader: attached.imageCounters)
    }

    /// Opens `inode` only if that costs no hashing (the file was opened before, or the image's mode needs no
    /// digest); nil otherwise, so that an event loop can hand the open to another thread.
    public func openWithoutHashing(imageID: String, inode: Inode) throws -> CachedFile? {
        try self.openWithoutHashing(try self.attachedImage(imageID), inode: inode)
    }

    /// What serving a path needs, from one registry lookup: the image's stamp, the path's inode (symlinks
    /// followed, remembered per image) and, for a regular file whose opening costs no hashing, the open file.
    public struct ResolvedPath: Sendable {
        public let stamp: ImageStamp
        public let inode: Inode
        /// Nil for a file that is not regular, or whose first open hashes it (use ``open(imageID:inode:)``).
        public let file: CachedFile?
    }

    /// Resolves `path` in image `imageID` and opens it when that is cheap; one lookup of the image.
    /// - Parameter visible: as for ``image(id:visible:)``; checked before the path is looked at, so that an
    ///   image the caller may not see tells nothing about its paths.
    /// - Throws: ``PageCacheError`` (`unknownImage`); the image's `EROFSError` for a missing or broken path.
    public func resolveForReading(
        imageID: String, path: String, visible: (TrustDomain) -> Bool = { _ in true }
    ) throws -> ResolvedPath {
        var lookup = ImageLookup()
        return try self.resolveForReading(imageID: imageID, path: path, visible: visible, lookup: &lookup)
    }

    /// As ``resolveForReading(imageID:path:visible:)``, finding the image through `lookup` (one connection's
    /// memory of its last image) when it can, without the registry's lock.
    public func resolveForReading(
        imageID: String, path: String, visible: (TrustDomain) -> Bool, lookup: inout ImageLookup
    ) throws -> ResolvedPath {
        let attached = try self.registry.attached(imageID, visible: visible, reading: true, lookup: &lookup)
        let entry = try attached.resolvedEntry(path)
        let inode = entry.inode
        if let shared = entry.file {
            return ResolvedPath(
                stamp: attached.stamp, inode: inode,
                file: CachedFile(cache: self, file: shared, reader: attached.imageCounters))
        }
        let file = inode.fileType == .regular ? try self.openWithoutHashing(attached, inode: inode) : nil
        if let file { attached.rememberOpened(file.file, nid: inode.nid, for: path) }
        return ResolvedPath(stamp: attached.stamp, inode: inode, file: file)
    }

    private func openWithoutHashing(_ attached: AttachedImage, inode: Inode) throws -> CachedFile? {
        guard inode.fileType == .regular else {
            throw PageCacheError(.notARegularFile, "nid \(inode.nid) is not a regular file")
        }
        if let file = attached.file(for: inode.nid) {
            return CachedFile(cache: self, file: file, reader: attached.imageCounters)
        }
        let needsHashing =
            (attached.mode == .digest && attached.digestTable.digest(for: inode.nid) == nil)
            || (attached.mode == .xattr && attached.verify && inode.fingerprint != nil)
        return needsHashing
            ? nil
            : CachedFile(cache: self, file: try self.sharedFile(attached, inode: inode), reader: attached.imageCounters)
    }

    /// Reads `inode` of image `imageID` from `offset` into `buffer` through the cache; returns the byte count
    /// (0 at or past the end).
    /// - Throws: ``PageCacheError``: `unknownImage`, `notARegularFile`, or `fillFailed` (with the image's
    ///   `EROFSError` as cause) when no sharer could supply a page.
    public func read(
        imageID: String, inode: Inode, at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer
    ) async throws -> Int {
        try await self.open(imageID: imageID, inode: inode).read(at: offset, into: buffer)
    }

    /// Reads the file at `path` (symlinks followed inside the image).
    public func read(
        imageID: String, path: String, at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer
    ) async throws -> Int {
        let attached = try self.attachedImage(imageID)
        return try await self.open(attached, inode: try attached.resolve(path)).read(at: offset, into: buffer)
    }

    /// Reads through the store holding `file`'s content, always on the ``fillExecutor``: a miss blocks in
    /// pread and decompression, which must never happen on the caller's thread (an event loop, the
    /// cooperative pool), whoever the caller is.
    func read(
        _ file: SharedFile, reader: ImageCounters?, at offset: UInt64, into destination: ReadDestination
    ) async throws -> Int {
        try await withTaskExecutorPreference(self.fillExecutor) {
            let read =
                if let map = file.chunkMap {
                    try await self.readChunks(file, map: map, reader: reader, at: offset, into: destination)
                } else {
                    try await self.readPages(file, reader: reader, at: offset, into: destination)
                }
            if read > 0 { self.noteRead(file, from: offset, to: offset + UInt64(read)) }
            return read
        }
    }

    /// Copies resident pages only, from `offset`, stopping at the first page that is not resident; returns
    /// the bytes copied. Never waits, reads an image or allocates: the event-loop fast path.
    func readResident(
        _ file: SharedFile, reader: ImageCounters, at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer,
        counting: ResidentCounting = .always
    ) -> Int {
        if let map = file.chunkMap {
            return self.takeResidentChunks(
                file, map: map, reader: reader, at: offset, maxBytes: buffer.count, counting: counting
            ) {
                shard, key, stamp, range, done in
                shard.copyIfReadable(
                    key, stamp: stamp, range: range,
                    into: UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + range.count]))
            }
        }
        return self.takeResident(file, reader: reader, at: offset, maxBytes: buffer.count, counting: counting) {
            shard, key, range, done in
            shard.copyIfResident(
                key, range: range, into: UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + range.count]))
        }
    }

    /// Lends resident pages from `offset`, up to `maxBytes`, stopping at the first page that is not resident;
    /// nil when that is the first. Never waits, reads an image or copies: the event-loop fast path.
    func borrowResident(
        _ file: SharedFile, reader: ImageCounters, at offset: UInt64, maxBytes: Int,
        counting: ResidentCounting = .always
    ) -> PageLoan? {
        var pages: [PageLoan.LentPage] = []
        if let map = file.chunkMap {
            pages.reserveCapacity(2 * maxBytes / self.chunkStore.chunker.averageBytes + 2)
            let lent = self.takeResidentChunks(
                file, map: map, reader: reader, at: offset, maxBytes: maxBytes, counting: counting
            ) {
                shard, key, stamp, range, _ in
                guard let (bytes, slot) = shard.borrowIfReadable(key, stamp: stamp, range: range) else { return false }
                pages.append(PageLoan.LentPage(bytes: bytes, shard: shard, slot: slot))
                return true
            }
            return lent > 0 ? PageLoan(pages: pages, byteCount: lent) : nil
        }
        pages.reserveCapacity(maxBytes / self.configuration.pageSize + 2)  // an unaligned range spans one more
        let lent = self.takeResident(file, reader: reader, at: offset, maxBytes: maxBytes, counting: counting) {
            shard, key, range, _ in
            guard let (bytes, slot) = shard.borrowIfResident(key, range: range) else { return false }
            pages.append(PageLoan.LentPage(bytes: bytes, shard: shard, slot: slot))
            return true
        }
        return lent > 0 ? PageLoan(pages: pages, byteCount: lent) : nil
    }

    /// Counts a read served from what was resident: `hits` pages or chunks, `bytes` bytes from `offset`.
    func noteResidentRead(_ file: SharedFile, reader: ImageCounters, at offset: UInt64, bytes: Int, hits: Int) {
        guard bytes > 0 else { return }
        file.counters.add(.hits, hits)
        file.counters.add(.logicalReadBytes, bytes)
        reader.hits.wrappingAdd(hits, ordering: .relaxed)
        reader.logicalReadBytes.wrappingAdd(bytes, ordering: .relaxed)
        self.noteRead(file, from: offset, to: offset + UInt64(bytes))
    }

    /// Starts readahead when a read continues the previous read of the same content.
    func noteRead(_ file: SharedFile, from offset: UInt64, to end: UInt64) {
        let previousEnd = file.lastReadEnd.exchange(end, ordering: .relaxed)
        guard previousEnd == offset && offset > 0, self.configuration.readaheadPages > 0 else { return }
        if let map = file.chunkMap {
            self.readAheadChunks(file, map: map, after: end)
        } else {
            self.readAheadPages(file, after: end)
        }
    }

    /// Waits for the readahead started so far.
    public func drainReadahead() async { await self.readahead.drain() }

    // MARK: Files

    /// Attached image `id` (see ``ImageRegistry/attached(_:visible:reading:)``).
    func attachedImage(
        _ id: String, visible: (TrustDomain) -> Bool = { _ in true }, reading: Bool = true
    ) throws -> AttachedImage {
        try self.registry.attached(id, visible: visible, reading: reading)
    }

    /// The dedup inode for `inode` of `imageID`: found in the image's own map, else keyed by fingerprint (or
    /// privately) in the registry, joining an existing one of the same domain, fingerprint and size.
    private func sharedFile(_ attached: AttachedImage, inode: Inode) throws -> SharedFile {
        let imageID = attached.id
        if let file = attached.file(for: inode.nid) { return file }
        var key = FileKey.privateFile(image: ObjectIdentifier(attached), nid: inode.nid)
        if attached.mode == .digest {
            let digest = try attached.digestTable.digest(for: inode.nid) ?? ContentDigest.sha256(attached.image, inode)
            key = .shared(domain: attached.domain, fingerprint: FingerprintValue.sha256(digest), size: inode.size)
        } else if attached.mode == .xattr, let fingerprint = inode.fingerprint {
            let trusted =
                try !attached.verify || ContentDigest.matches(attached.image, inode, fingerprint: fingerprint)
            if trusted {
                key = .shared(domain: attached.domain, fingerprint: fingerprint, size: inode.size)
            } else {
                attached.counters.add(.verifyFailures, 1)
                let reason =
                    FingerprintValue.sha256Digest(fingerprint) == nil
                    ? "fingerprint is not a sha256: value and cannot be verified" : "content does not match"
                self.logger.warning(
                    "file failed verification: cached privately, not shared",
                    metadata: [
                        "image": "\(imageID)", "nid": "\(inode.nid)", "domain": "\(attached.domain)",
                        "reason": "\(reason)",
                    ])
            }
        }
        let sharer = Sharer(imageID: imageID, image: attached.image, inode: inode)
        let file = self.registry.share(key, sharer: sharer) { id in
            SharedFile(
                id: id, key: key, size: inode.size, counters: attached.counters, first: sharer,
                chunkMap: self.configuration.usesChunkStore ? self.chunkMap(key, size: inode.size, attached) : nil)
        }
        attached.remember(file, for: inode.nid)
        return file
    }

    /// A new chunk map for the content `key`: content-defined chunks kept across restarts, or private pieces
    /// for a domain that shares whole files only.
    private func chunkMap(_ key: FileKey, size: UInt64, _ attached: AttachedImage) -> ChunkMap {
        let chunker = self.chunkStore.chunker
        let windowBytes = self.chunkStore.windowBytes
        guard attached.counters.sharing == .chunk else {
            return ChunkMap(
                size: size, windowBytes: windowBytes, maximumChunk: chunker.maximumBytes,
                privatePieceBytes: min(self.configuration.pageSize, chunker.maximumBytes))
        }
        return ChunkMap(
            size: size, windowBytes: windowBytes, maximumChunk: chunker.maximumBytes,
            archivePath: self.chunkMapArchive?.path(for: key, chunker: chunker, windowBytes: windowBytes))
    }

}
