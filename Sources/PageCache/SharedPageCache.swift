import EROFS
import Foundation
import Logging
import Metrics
import Synchronization

/// The node-wide page cache: decoded file bytes, one copy per content within a fingerprint domain, under a
/// hard byte budget. With `sharing: file` (the userspace form of the kernel's page cache share) the unit is
/// the whole file, held in fixed-size pages; with `sharing: chunk` files are cut into content-defined
/// chunks and equal chunks (bytes compared) are held once in the ``ChunkStore`` (see `Chunks/`).
///
/// Reads go page by page: a hit copies under its shard's lock; a miss is filled once (single flight: other
/// readers of the page wait for it) from whichever attached image holds the content, falling back to the
/// next one if a read fails. Images, domains and shared files are control-plane state behind their own locks,
/// touched once per read call, never per page.
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

        /// What `domain` shares by.
        public func sharing(for domain: TrustDomain) -> SharingUnit { self.domainSharing[domain] ?? self.sharing }

        /// Whether the chunk store holds the budget (some domain shares by chunk); else the page store does.
        var usesChunkStore: Bool { self.sharing == .chunk || self.domainSharing.values.contains(.chunk) }
    }

    public let configuration: Configuration
    let logger: Logger
    /// Where fills should run (readahead does): `Task(executorPreference: cache.fillExecutor)`.
    public let fillExecutor: FillExecutor
    private let shards: [CacheShard]
    /// Content shared by chunk; holds the budget when ``Configuration/sharing`` is `chunk`.
    let chunkStore: ChunkStore
    private let chunkMapArchive: ChunkMapArchive?
    private let registry = Mutex(Registry())
    private let metrics = CacheMetrics()
    private let decompressionMetrics = DecompressionMetrics()
    private let imageMetrics = ImageMetrics()
    /// Reads of an image that failed during fills (each sharer tried counts once).
    private let readErrors = Atomic<Int>(0)
    /// Readahead tasks in flight, so that ``drainReadahead()`` (tests, shutdown) can wait for them.
    private let readahead = Mutex<(next: Int, tasks: [Int: Task<Void, Never>])>((0, [:]))

    private struct Registry: ~Copyable {
        /// Attached images by id, compared as bytes.
        var images: [ByteKey: AttachedImage] = [:]
        var files: [FileKey: SharedFile] = [:]
        var domains: [TrustDomain: DomainCounters] = [:]
        var nextFileID: UInt64 = 1

        /// The counters of `domain`, made on first use (sharing as `configuration` says).
        mutating func counters(for domain: TrustDomain, _ configuration: Configuration) -> DomainCounters {
            if let counters = self.domains[domain] { return counters }
            let counters = DomainCounters(
                chunkScope: UInt32(self.domains.count + 1), sharing: configuration.sharing(for: domain))
            self.domains[domain] = counters
            return counters
        }
    }

    /// Creates an empty cache.
    /// - Throws: ``PageCacheError`` (`invalidArgument`) for a page size that is not a power of two in 4 KiB
    ///   ... 64 KiB, or a budget smaller than one page per shard.
    public init(configuration: Configuration, logger: Logger = Logger(label: "pageshare.cache")) throws {
        let pageSize = configuration.pageSize
        guard pageSize >= 4096, pageSize <= 65536, pageSize & (pageSize - 1) == 0 else {
            throw PageCacheError(.invalidArgument, "page size \(pageSize) is not a power of two in 4 KiB...64 KiB")
        }
        let pages = configuration.budgetBytes / pageSize
        var shardCount = 1
        while shardCount * 2 <= max(1, min(configuration.shardCount, pages)) { shardCount *= 2 }
        guard pages >= shardCount, pages > 0 else {
            throw PageCacheError(.invalidArgument, "budget of \(configuration.budgetBytes) bytes holds no page")
        }
        let average = configuration.chunkAverageBytes
        guard average >= 1024, average <= 65536, average & (average - 1) == 0 else {
            throw PageCacheError(
                .invalidArgument, "chunk average size \(average) is not a power of two in 1 KiB...64 KiB")
        }
        self.configuration = configuration
        self.logger = logger
        let chunker = ContentDefinedChunker(averageBytes: average)
        switch configuration.usesChunkStore {
        case false:
            self.shards = (0..<shardCount).map { _ in CacheShard(capacity: pages / shardCount, pageSize: pageSize) }
            self.chunkStore = ChunkStore(budgetBytes: 0, shardCount: 1, chunker: chunker)
        case true:
            guard configuration.budgetBytes >= chunker.maximumBytes else {
                throw PageCacheError(
                    .invalidArgument,
                    "budget of \(configuration.budgetBytes) bytes holds no \(chunker.maximumBytes)-byte chunk")
            }
            self.shards = [CacheShard(capacity: 1, pageSize: pageSize)]
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
        } else {
            self.chunkMapArchive = nil
        }
        self.fillExecutor = FillExecutor(threads: configuration.fillThreads)
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
        try self.registry.withLock { registry in
            guard registry.images[ByteKey(id)] == nil else {
                throw PageCacheError(.imageExists, "image \(id) is already attached")
            }
            let counters = registry.counters(for: domain, self.configuration)
            registry.images[ByteKey(id)] = AttachedImage(
                id: id, image: image, domain: domain, mode: mode, verify: verify, counters: counters)
        }
    }

    /// Detaches `id`: its files stop being sharers; content no other image holds is dropped at once, shared
    /// content stays for the other sharers. Reads already in flight finish.
    public func detach(id: String) throws {
        let orphans = try self.registry.withLock { registry -> [SharedFile] in
            guard let attached = registry.images.removeValue(forKey: ByteKey(id)) else {
                throw PageCacheError(.unknownImage, "no image \(id) is attached")
            }
            return Self.withdraw(attached, from: &registry)
        }
        self.forget(orphans)
    }

    /// Marks image `id` as changed on disk (`reason`): it stops being a sharer of its files, content no other
    /// image holds is dropped at once (as on detach), and its reads fail with `imageChanged` until it is
    /// detached and attached again. Only the attachment of `image` is marked (not a later one of the same
    /// id). Returns whether this call marked it.
    @discardableResult
    public func markChanged(id: String, image: Image? = nil, reason: String) -> Bool {
        let orphans = self.registry.withLock { registry -> [SharedFile]? in
            guard let attached = registry.images[ByteKey(id)], image.map({ $0.file === attached.image.file }) ?? true,
                attached.markChanged(reason)
            else { return nil }
            return Self.withdraw(attached, from: &registry)
        }
        guard let orphans else { return false }
        self.forget(orphans)
        self.logger.error(
            "image changed on disk: its reads fail until it is attached again",
            metadata: ["image": "\(id)", "reason": "\(reason)"])
        return true
    }

    /// Why image `id` was marked changed, or nil.
    public func changeReason(imageID id: String) -> String? {
        self.registry.withLock { $0.images[ByteKey(id)] }?.changeReason
    }

    /// Drops the pages and chunks of files no attached image holds any more, and their kept chunk maps.
    private func forget(_ orphans: [SharedFile]) {
        self.purgePages(of: orphans)
        for path in orphans.compactMap({ $0.chunkMap?.archivePath }) { unlink(path) }
    }

    /// Removes `attached` from the sharers of the files it touched; returns the files left without one,
    /// whose pages the caller purges.
    private static func withdraw(_ attached: AttachedImage, from registry: inout Registry) -> [SharedFile] {
        let id = ByteKey(attached.id)
        var orphans: [SharedFile] = []
        for file in attached.touchedFiles() {
            let remaining = file.sharers.withLock { sharers -> Int in
                sharers.removeAll { ByteKey($0.imageID) == id }
                return sharers.count
            }
            if remaining == 0 {
                registry.files.removeValue(forKey: file.key)
                orphans.append(file)
            }
        }
        return orphans
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
        let files = self.registry.withLock { registry -> [SharedFile] in
            guard let counters = registry.domains[domain] else { return [] }
            return registry.files.values.filter { $0.counters === counters }
        }
        return self.purgePages(of: files, force: true)
    }

    /// Removes the pages of `files` from every shard, and their chunks (those no other file holds, or with
    /// `force` all of them); returns the bytes removed.
    @discardableResult
    private func purgePages(of files: [SharedFile], force: Bool = false) -> Int {
        guard !files.isEmpty else { return 0 }
        let ids = Set(files.map(\.id))
        var pages = 0
        for shard in self.shards {
            for file in shard.purge(files: ids) {
                self.noteDropped(file)
                pages += 1
            }
        }
        return pages * self.configuration.pageSize + self.releaseChunks(of: files, force: force)
    }

    /// Limits `domain`'s resident bytes (nil: no limit). A domain at its quota replaces its own pages and
    /// never evicts another domain's; pages it cannot cache are read through without caching.
    public func setQuota(_ bytes: Int?, for domain: TrustDomain) {
        let counters = self.registry.withLock { $0.counters(for: domain, self.configuration) }
        counters.quota = bytes
    }

    /// What `domain` shares by (``Configuration/domainSharing``, else ``Configuration/sharing``).
    public func sharing(for domain: TrustDomain) -> SharingUnit { self.configuration.sharing(for: domain) }

    /// `domain`'s quota in bytes (nil: none).
    public func quota(for domain: TrustDomain) -> Int? {
        self.registry.withLock { $0.domains[domain]?.quota }
    }

    /// The domains known to the cache (those of attached images, past or present, and those given a quota).
    public var domains: [TrustDomain] {
        self.registry.withLock { Array($0.domains.keys) }.sorted { $0.name < $1.name }
    }

    /// The image attached as `id`, for metadata (lookups, stat, listings) outside the cache.
    /// - Parameter visible: whether a caller may see images of a domain; an image it may not see is reported
    ///   exactly like one that is not attached.
    /// - Throws: ``PageCacheError`` (`unknownImage`).
    public func image(id: String, visible: (TrustDomain) -> Bool = { _ in true }) throws -> Image {
        try self.attachedImage(id, visible: visible).image
    }

    /// Ids of the attached images.
    public var imageIDs: [String] { self.registry.withLock { $0.images.keys.map(\.string).sorted() } }

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

    /// What serving a path needs, from one registry lookup: the image, the path's inode (symlinks followed,
    /// remembered per image) and, for a regular file whose opening costs no hashing, the open file.
    public struct ResolvedPath: Sendable {
        public let image: Image
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
        let attached = try self.attachedImage(imageID, visible: visible)
        let inode = try attached.resolve(path)
        let file = inode.fileType == .regular ? try self.openWithoutHashing(attached, inode: inode) : nil
        return ResolvedPath(image: attached.image, inode: inode, file: file)
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

    func read(
        _ file: SharedFile, reader: ImageCounters?, at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer
    ) async throws -> Int {
        if let map = file.chunkMap {
            let read = try await self.readChunks(file, map: map, reader: reader, at: offset, into: buffer)
            if read > 0 { self.noteRead(file, from: offset, to: offset + UInt64(read)) }
            return read
        }
        guard offset < file.size, buffer.count > 0 else { return 0 }
        let pageSize = UInt64(self.configuration.pageSize)
        let total = Int(min(UInt64(buffer.count), file.size - offset))
        var done = 0
        while done < total {
            let position = offset + UInt64(done)
            let page = position / pageSize
            let within = Int(position % pageSize)
            let count = min(total - done, Int(pageSize) - within)
            try await self.copyPage(
                file, reader: reader, page: page, range: within..<within + count,
                into: UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + count]))
            done += count
        }
        file.counters.add(.logicalReadBytes, total)
        reader?.logicalReadBytes.wrappingAdd(total, ordering: .relaxed)
        self.noteRead(file, from: offset, to: offset + UInt64(total))
        return total
    }

    /// Copies resident pages only, from `offset`, stopping at the first page that is not resident; returns
    /// the bytes copied. Never waits, reads an image or allocates: the event-loop fast path.
    func readResident(
        _ file: SharedFile, reader: ImageCounters, at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer
    ) -> Int {
        if let map = file.chunkMap {
            return self.takeResidentChunks(file, map: map, reader: reader, at: offset, maxBytes: buffer.count) {
                shard, key, stamp, range, done in
                shard.copyIfReadable(
                    key, stamp: stamp, range: range,
                    into: UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + range.count]))
            }
        }
        return self.takeResident(file, reader: reader, at: offset, maxBytes: buffer.count) { shard, key, range, done in
            shard.copyIfResident(
                key, range: range, into: UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + range.count]))
        }
    }

    /// Lends resident pages from `offset`, up to `maxBytes`, stopping at the first page that is not resident;
    /// nil when that is the first. Never waits, reads an image or copies: the event-loop fast path.
    func borrowResident(_ file: SharedFile, reader: ImageCounters, at offset: UInt64, maxBytes: Int) -> PageLoan? {
        var pages: [PageLoan.LentPage] = []
        if let map = file.chunkMap {
            pages.reserveCapacity(2 * maxBytes / self.chunkStore.chunker.averageBytes + 2)
            let lent = self.takeResidentChunks(file, map: map, reader: reader, at: offset, maxBytes: maxBytes) {
                shard, key, stamp, range, _ in
                guard let (bytes, slot) = shard.borrowIfReadable(key, stamp: stamp, range: range) else { return false }
                pages.append(PageLoan.LentPage(bytes: bytes, shard: shard, slot: slot))
                return true
            }
            return lent > 0 ? PageLoan(pages: pages, byteCount: lent) : nil
        }
        pages.reserveCapacity(maxBytes / self.configuration.pageSize + 2)  // an unaligned range spans one more
        let lent = self.takeResident(file, reader: reader, at: offset, maxBytes: maxBytes) { shard, key, range, _ in
            guard let (bytes, slot) = shard.borrowIfResident(key, range: range) else { return false }
            pages.append(PageLoan.LentPage(bytes: bytes, shard: shard, slot: slot))
            return true
        }
        return lent > 0 ? PageLoan(pages: pages, byteCount: lent) : nil
    }

    /// Walks the pages from `offset` (up to `maxBytes`, never past the end), handing each page's key, byte
    /// range and the bytes taken so far to `take`, until `take` finds a page not resident; counts what was
    /// taken as hits and one read. Returns the bytes taken.
    private func takeResident(
        _ file: SharedFile, reader: ImageCounters, at offset: UInt64, maxBytes: Int,
        _ take: (CacheShard, PageKey, Range<Int>, Int) -> Bool
    ) -> Int {
        guard offset < file.size, maxBytes > 0 else { return 0 }
        let pageSize = UInt64(self.configuration.pageSize)
        let total = Int(min(UInt64(maxBytes), file.size - offset))
        var done = 0
        var hits = 0
        while done < total {
            let position = offset + UInt64(done)
            let key = PageKey(file: file.id, page: position / pageSize)
            let within = Int(position % pageSize)
            let count = min(total - done, Int(pageSize) - within)
            let shard = self.shards[Self.shardIndex(key, count: self.shards.count)]
            guard take(shard, key, within..<within + count, done) else { break }
            done += count
            hits += 1
        }
        self.noteResidentRead(file, reader: reader, at: offset, bytes: done, hits: hits)
        return done
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
        if previousEnd == offset && offset > 0 { self.readAhead(file, after: end) }
    }

    /// Sequential access: keeps the pages up to `readaheadPages` past `position` warm. A new window is
    /// scheduled only when reads come within half a window of the pages already scheduled, so a run of
    /// sequential hits costs one background task per half window, not one per read.
    private func readAhead(_ file: SharedFile, after position: UInt64) {
        let window = UInt64(self.configuration.readaheadPages)
        guard window > 0 else { return }
        if let map = file.chunkMap {
            self.readAheadChunks(file, map: map, after: position)
            return
        }
        let pageSize = UInt64(self.configuration.pageSize)
        let next = (position + pageSize - 1) / pageSize
        let last = min(next + window, (file.size + pageSize - 1) / pageSize)
        let scheduled = file.readaheadEnd.load(ordering: .relaxed)
        guard next + window / 2 >= scheduled, last > scheduled,
            file.readaheadEnd.compareExchange(expected: scheduled, desired: last, ordering: .relaxed).exchanged
        else { return }
        let first = max(next, scheduled)
        self.startReadahead {
            for page in first..<last {
                // A failing page is left for a reader to fail on; readahead only warms the cache.
                let empty = UnsafeMutableRawBufferPointer(start: nil, count: 0)
                guard (try? await self.copyPage(file, reader: nil, page: page, range: 0..<0, into: empty)) != nil
                else {
                    break
                }
            }
        }
    }

    /// Runs `work` on the fill executor as a readahead task that ``drainReadahead()`` waits for.
    func startReadahead(_ work: @escaping @Sendable () async -> Void) {
        self.readahead.withLock { state in
            let id = state.next
            state.next += 1
            state.tasks[id] = Task(executorPreference: self.fillExecutor) {
                await work()
                _ = self.readahead.withLock { $0.tasks.removeValue(forKey: id) }
            }
        }
    }

    /// Waits for the readahead started so far.
    public func drainReadahead() async {
        while let task = self.readahead.withLock({ $0.tasks.values.first }) {
            await task.value
        }
    }

    private func copyPage(
        _ file: SharedFile, reader: ImageCounters?, page: UInt64, range: Range<Int>,
        into destination: UnsafeMutableRawBufferPointer
    ) async throws {
        let key = PageKey(file: file.id, page: page)
        let shard = self.shards[Self.shardIndex(key, count: self.shards.count)]
        while true {
            let reservation = self.reserve(file.counters)
            let lookup = shard.lookup(
                key, range: range, into: destination, owner: file.counters, overQuota: reservation.overQuota)
            switch lookup {
            case .hit:
                self.release(reservation, file.counters)
                file.counters.add(.hits, 1)
                reader?.hits.wrappingAdd(1, ordering: .relaxed)
                return
            case .bypass:
                // At quota with nothing of its own to replace here, or no slot to be had: serve from a private
                // page, cache nothing.
                self.release(reservation, file.counters)
                file.counters.add(.misses, 1)
                reader?.misses.wrappingAdd(1, ordering: .relaxed)
                let scratch = UnsafeMutableRawBufferPointer.allocate(
                    byteCount: self.configuration.pageSize, alignment: 4096)
                defer { scratch.deallocate() }
                _ = try self.fill(
                    file, at: page * UInt64(self.configuration.pageSize), into: scratch, context: ReadContext())
                destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: scratch[range]))
                return
            case .busy:
                self.release(reservation, file.counters)
                await shard.waitForFill(key)
            case .fill(let slot, let evicted):
                if let evicted { self.noteEvicted(evicted) }
                file.counters.add(.misses, 1)
                reader?.misses.wrappingAdd(1, ordering: .relaxed)
                let context = ReadContext()
                let source: Sharer
                do {
                    source = try self.fill(
                        file, at: page * UInt64(self.configuration.pageSize), into: shard.page(slot), context: context)
                } catch {
                    self.release(reservation, file.counters)
                    shard.abandon(key, slot: slot)
                    throw error
                }
                self.noteFilled(file, reader: reader, reserved: reservation.taken)
                shard.publish(key, slot: slot, file: file, range: range, into: destination)
                self.fillAround(file, page: page, from: source, context: context)
                self.dropIfOrphaned(file)
                return
            }
        }
    }

    /// A fill that raced with the detach of the file's last sharer published pages (or chunks) nobody can
    /// reach: they go at once instead of holding budget until evicted.
    func dropIfOrphaned(_ file: SharedFile) {
        if file.sharerCount == 0 { self.purgePages(of: [file]) }
    }

    /// A page counted against a domain's quota before its slot is claimed: with a quota, concurrent fills of
    /// one domain each see the pages the others are filling, so together they cannot go past the quota.
    private struct Reservation {
        /// The domain would be past its quota with this page: it may only replace one of its own.
        var overQuota: Bool
        /// Whether the page's bytes were added to the domain's resident bytes (only when it has a quota).
        var taken: Bool
    }

    private func reserve(_ counters: DomainCounters) -> Reservation {
        guard let quota = counters.quota else { return Reservation(overQuota: false, taken: false) }
        let after = counters.residentBytes.wrappingAdd(self.configuration.pageSize, ordering: .relaxed).newValue
        return Reservation(overQuota: after > quota, taken: true)
    }

    /// Gives a reservation back (the page was not published).
    private func release(_ reservation: Reservation, _ counters: DomainCounters) {
        if reservation.taken { counters.add(.residentBytes, -self.configuration.pageSize) }
    }

    /// A page of `file` left the cache (dropped or evicted).
    private func noteDropped(_ file: SharedFile) {
        file.residentPages.wrappingSubtract(1, ordering: .relaxed)
        file.counters.add(.residentBytes, -self.configuration.pageSize)
    }

    /// A page of `file` was evicted to make room for another.
    private func noteEvicted(_ file: SharedFile) {
        self.noteDropped(file)
        file.counters.add(.evictions, 1)
    }

    private func noteFilled(_ file: SharedFile, reader: ImageCounters?, reserved: Bool) {
        file.residentPages.wrappingAdd(1, ordering: .relaxed)
        if !reserved { file.counters.add(.residentBytes, self.configuration.pageSize) }
        file.counters.add(.fills, 1)
        reader?.fills.wrappingAdd(1, ordering: .relaxed)
    }

    /// Most pages filled around a miss from one decoded extent (1 MiB of 4 KiB pages).
    private static let fillAroundPages: UInt64 = 256

    /// After a miss in a compressed file, fills the other missing pages of the extent just decoded (up to
    /// ``fillAroundPages``) from `context`'s copy of it: reading a compressed extent decodes all of it, so
    /// without this each page of the extent would decode it again (n pages, n decodes). Best effort: pages
    /// being filled by others, or that would evict at quota, are skipped; a failure stops it.
    private func fillAround(_ file: SharedFile, page: UInt64, from source: Sharer, context: ReadContext) {
        let pageSize = UInt64(self.configuration.pageSize)
        guard let extent = context.decodedRange(of: source.inode, in: source.image) else { return }
        let first = max(extent.lowerBound / pageSize, page > Self.fillAroundPages ? page - Self.fillAroundPages : 0)
        let last = min((extent.upperBound - 1) / pageSize, page + Self.fillAroundPages)
        guard first < last else { return }
        for sibling in first...last where sibling != page {
            let key = PageKey(file: file.id, page: sibling)
            let shard = self.shards[Self.shardIndex(key, count: self.shards.count)]
            let reservation = self.reserve(file.counters)
            guard let (slot, evicted) = shard.claimIfAbsent(key, overQuota: reservation.overQuota) else {
                self.release(reservation, file.counters)
                continue
            }
            if let evicted { self.noteEvicted(evicted) }
            do {
                try Self.read(
                    source, at: sibling * pageSize, size: file.size, into: shard.page(slot), context: context)
                try self.checkUnchanged(source)
            } catch {
                self.release(reservation, file.counters)
                shard.abandon(key, slot: slot)
                return
            }
            self.noteFilled(file, reader: nil, reserved: reservation.taken)
            shard.publish(
                key, slot: slot, file: file, range: 0..<0, into: UnsafeMutableRawBufferPointer(start: nil, count: 0))
        }
    }

    /// Throws `imageChanged` (and marks the image) when `sharer`'s image file was written to since it was
    /// attached: two `fstat`s per fill keep a changed image's bytes out of the cache even where inotify
    /// cannot see the write (another host's write on a network filesystem, a full event queue).
    private func checkUnchanged(_ sharer: Sharer) throws {
        guard let reason = sharer.image.contentChange() else { return }
        self.markChanged(id: sharer.imageID, image: sharer.image, reason: reason)
        throw PageCacheError(.imageChanged, reason)
    }

    /// Reads `sharer`'s inode from `offset` into `memory` (bytes past the end are zero).
    static func read(
        _ sharer: Sharer, at offset: UInt64, size: UInt64, into memory: UnsafeMutableRawBufferPointer,
        context: ReadContext
    ) throws {
        let count = Int(min(UInt64(memory.count), size - offset))
        let read = try sharer.image.read(
            sharer.inode, at: offset, into: UnsafeMutableRawBufferPointer(rebasing: memory[0..<count]),
            context: context)
        guard read == count else {
            throw EROFSError(.corrupted, "short read of \(read) bytes", nid: sharer.inode.nid)
        }
        if count < memory.count {
            UnsafeMutableRawBufferPointer(rebasing: memory[count...]).initializeMemory(as: UInt8.self, repeating: 0)
        }
    }

    /// Reads `memory.count` bytes of `file` from `offset` from the first sharer that can supply them
    /// (returned); bytes past the end are zero. `context` keeps the decoded extent of a compressed file for
    /// ``fillAround``.
    func fill(
        _ file: SharedFile, at offset: UInt64, into memory: UnsafeMutableRawBufferPointer, context: ReadContext
    ) throws -> Sharer {
        let sharers = file.sharers.withLock { $0 }
        var lastError: (any Error)? = nil
        for sharer in sharers {
            do {
                try self.checkUnchanged(sharer)
                try Self.read(sharer, at: offset, size: file.size, into: memory, context: context)
                // Checked again after the read: a write that raced with it may have mixed old and new bytes.
                try self.checkUnchanged(sharer)
                return sharer
            } catch {
                lastError = error
                self.readErrors.wrappingAdd(1, ordering: .relaxed)
            }
        }
        if let changed = lastError as? PageCacheError, changed.code == .imageChanged { throw changed }
        throw PageCacheError(
            .fillFailed,
            "no attached image could supply bytes at \(offset): \(lastError.map { "\($0)" } ?? "no sharer")",
            cause: lastError)
    }

    private static func shardIndex(_ key: PageKey, count: Int) -> Int {
        // Fibonacci hashing (Knuth): multiply by 2^64/φ and keep the top bits, which every input bit reaches,
        // so consecutive pages of a file spread evenly over the stripes (`count` is a power of two).
        let mixed = (key.file &* 0xC2B2_AE3D_27D4_EB4F &+ key.page) &* 0x9E37_79B9_7F4A_7C15
        return Int(truncatingIfNeeded: mixed >> (64 - count.trailingZeroBitCount))
    }

    // MARK: Files

    /// Attached image `id`; for `reading`, one marked changed on disk is refused with `imageChanged`.
    func attachedImage(
        _ id: String, visible: (TrustDomain) -> Bool = { _ in true }, reading: Bool = true
    ) throws -> AttachedImage {
        guard let attached = self.registry.withLock({ $0.images[ByteKey(id)] }), visible(attached.domain) else {
            throw PageCacheError(.unknownImage, "no image \(id) is attached")
        }
        if reading, attached.isChanged.load(ordering: .acquiring) {
            throw PageCacheError(.imageChanged, attached.changeReason ?? "image \(id) changed on disk")
        }
        return attached
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
        let file = self.registry.withLock { registry -> SharedFile in
            if let existing = registry.files[key] {
                existing.sharers.withLock { sharers in
                    if !sharers.contains(where: { ByteKey($0.imageID) == ByteKey(imageID) && $0.inode.nid == inode.nid }
                    ) {
                        sharers.append(sharer)
                    }
                }
                return existing
            }
            let chunkMap = self.configuration.usesChunkStore ? self.chunkMap(key, size: inode.size, attached) : nil
            let file = SharedFile(
                id: registry.nextFileID, key: key, size: inode.size, counters: attached.counters, first: sharer,
                chunkMap: chunkMap)
            registry.nextFileID += 1
            registry.files[key] = file
            return file
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

    // MARK: Accounting

    /// Publishes the cache's series (see `CacheMetrics`): per-domain gauges
    /// `pageshare_cache_{resident,saved,logical_read,quota}_bytes{domain}`, per-domain counters
    /// `pageshare_cache_{hits,misses,fills,evictions,verify_failures}_total{domain}`, and the global gauges
    /// `pageshare_cache_budget_bytes`, `pageshare_cache_attached_images`, `pageshare_cache_dedup_inodes`;
    /// and the decompressors' `pageshare_decompression_*_total{algorithm}` (see `DecompressionMetrics`).
    /// With `perImage`, also `pageshare_image_*{image}` (see `ImageMetrics`). Call it before each scrape.
    public func publishMetrics(to factory: any MetricsFactory = MetricsSystem.factory, perImage: Bool = false) {
        let statistics = self.allStatistics()
        let (quotas, images, files) = self.registry.withLock { registry in
            (
                registry.domains.mapValues(\.quota), registry.images.count, registry.files.count
            )
        }
        let withQuotas = statistics.reduce(into: [TrustDomain: (DomainStatistics, quota: Int?)]()) { result, entry in
            result[entry.key] = (entry.value, quotas[entry.key] ?? nil)
        }
        self.metrics.publish(
            withQuotas, budget: self.budgetBytes, used: self.residentBytes,
            images: images, dedupInodes: files, metadataBytes: self.metadataBytes,
            readErrors: self.readErrors.load(ordering: .relaxed), to: factory)
        self.decompressionMetrics.publish(to: factory)
        if perImage {
            let statistics = self.imageIDs.reduce(into: [ByteKey: ImageStatistics]()) { result, id in
                result[ByteKey(id)] = try? self.statistics(forImage: id)
            }
            self.imageMetrics.publish(statistics, to: factory)
        }
    }

    /// Accounting of attached image `imageID`.
    /// - Throws: ``PageCacheError`` (`unknownImage`).
    public func statistics(forImage imageID: String) throws -> ImageStatistics {
        let attached = try self.attachedImage(imageID, reading: false)
        let files = attached.touchedFiles()
        let pages = files.reduce(0) { $0 + $1.residentPages.load(ordering: .relaxed) }
        let chunks = files.reduce(0) { $0 + self.residentChunkBytes(of: $1) }
        let counters = attached.imageCounters
        return ImageStatistics(
            residentBytes: pages * self.configuration.pageSize + chunks,
            logicalReadBytes: counters.logicalReadBytes.load(ordering: .relaxed),
            hits: counters.hits.load(ordering: .relaxed), misses: counters.misses.load(ordering: .relaxed),
            fills: counters.fills.load(ordering: .relaxed))
    }

    /// Accounting of `domain` (zeros for a domain never attached).
    public func statistics(for domain: TrustDomain) -> DomainStatistics {
        self.allStatistics()[domain]
            ?? DomainStatistics(
                residentBytes: 0, logicalReadBytes: 0, hits: 0, misses: 0, fills: 0, evictions: 0, savedBytes: 0,
                chunkSavedBytes: 0, verifyFailures: 0)
    }

    /// Totals of the whole cache.
    public struct Summary: Sendable, Hashable {
        /// Page data budget (whole pages per shard) and page size, in bytes.
        public var budgetBytes: Int
        public var pageSize: Int
        public var residentBytes: Int
        /// Bookkeeping beside the page data.
        public var metadataBytes: Int
        public var attachedImages: Int
        /// Dedup inodes: distinct cached contents known to the cache.
        public var dedupInodes: Int
        public var sharing: SharingUnit
        /// Chunks resident (``SharingUnit/chunk``), and the bytes of the files' chunk maps (part of
        /// `metadataBytes`).
        public var residentChunks: Int
        public var chunkMapBytes: Int
        /// Chunk store bytes holding no resident chunk: segment tails and holes not yet compacted.
        public var chunkWasteBytes: Int
    }

    /// Totals of the whole cache, for the admin API.
    public var summary: Summary {
        let (images, files) = self.registry.withLock { ($0.images.count, $0.files.count) }
        let maps = self.chunkMapBytes
        return Summary(
            budgetBytes: self.budgetBytes, pageSize: self.configuration.pageSize, residentBytes: self.residentBytes,
            metadataBytes: self.metadataBytes(chunkMaps: maps), attachedImages: images, dedupInodes: files,
            sharing: self.configuration.sharing, residentChunks: self.chunkStore.resident.chunks,
            chunkMapBytes: maps, chunkWasteBytes: self.chunkStore.wasteBytes)
    }

    /// Accounting of every domain, with bytes saved summed over the shared files in one pass.
    public func allStatistics() -> [TrustDomain: DomainStatistics] {
        let (domains, files) = self.registry.withLock { registry in
            (registry.domains, Array(registry.files.values))
        }
        var savedByFiles: [ObjectIdentifier: Int] = [:]
        for file in files {
            let sharers = file.sharerCount
            guard sharers > 1 else { continue }
            let resident =
                file.residentPages.load(ordering: .relaxed) * self.configuration.pageSize
                + self.residentChunkBytes(of: file)
            savedByFiles[ObjectIdentifier(file.counters), default: 0] += (sharers - 1) * resident
        }
        let savedByChunks = self.chunkStore.savedBytesByOwner
        return domains.mapValues { counters in
            DomainStatistics(
                residentBytes: counters.residentBytes.load(ordering: .relaxed),
                logicalReadBytes: counters.logicalReadBytes.load(ordering: .relaxed),
                hits: counters.hits.load(ordering: .relaxed), misses: counters.misses.load(ordering: .relaxed),
                fills: counters.fills.load(ordering: .relaxed), evictions: counters.evictions.load(ordering: .relaxed),
                savedBytes: savedByFiles[ObjectIdentifier(counters)] ?? 0,
                chunkSavedBytes: savedByChunks[ObjectIdentifier(counters)] ?? 0,
                verifyFailures: counters.verifyFailures.load(ordering: .relaxed))
        }
    }

    /// The usable page budget: whole pages in every shard.
    private var budgetBytes: Int {
        self.configuration.usesChunkStore
            ? self.chunkStore.budgetBytes : self.shards.count * self.shards[0].capacity * self.configuration.pageSize
    }

    /// Bytes of bookkeeping beside the page data (slots, eviction lists, page index) and of the decoded
    /// metabox and packed-inode blocks the attached images keep (bounded per image).
    public var metadataBytes: Int { self.metadataBytes(chunkMaps: self.chunkMapBytes) }

    private func metadataBytes(chunkMaps: Int) -> Int {
        let decoded = self.registry.withLock { $0.images.values.reduce(0) { $0 + $1.image.decodedMetadataBytes } }
        return self.shards.reduce(0) { $0 + $1.metadataBytes } + self.chunkStore.metadataBytes + chunkMaps + decoded
    }

    /// Bytes of the chunk maps of the files known (the windows cut so far).
    var chunkMapBytes: Int {
        self.registry.withLock { $0.files.values.reduce(0) { $0 + ($1.chunkMap?.metadataBytes ?? 0) } }
    }

    /// Bytes of page data resident across all domains (never more than the budget).
    public var residentBytes: Int {
        self.shards.reduce(0) { $0 + $1.residentPages } * self.configuration.pageSize
            + self.chunkStore.resident.bytes
    }
}

/// An attached image and the dedup inodes its reads have touched.
final class AttachedImage: Sendable {
    let id: String
    let image: Image
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
        try self.resolvedPaths.inode(for: path) { try self.image.resolve(path) }
    }
    func remember(_ file: SharedFile, for nid: UInt64) { self.files.withLock { $0[nid] = file } }
    func touchedFiles() -> [SharedFile] { self.files.withLock { Array($0.values) } }
}
