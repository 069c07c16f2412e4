import EROFS
import Logging
import PageCache
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The control plane: the images' records (from where, by whom, why one failed), domain quotas, and the
/// state directory that makes admin-API changes survive a restart or a crash. What is attached, in which
/// mode and whether it changed on disk is the cache's ``ImageRegistry``'s to say; the catalog reads it there.
///
/// An actor (control-plane traffic only; reads never touch it). Each change is one synchronous step on the
/// actor (no suspension between checking and applying), and a change made through the admin API is written
/// to the state directory before it is applied and acknowledged: `kill -9` at any moment loses no
/// acknowledged attach, detach or quota.
public actor ImageCatalog {
    public nonisolated let cache: SharedPageCache
    private let store: StateStore?
    let logger: Logger
    /// Records by image id, compared as bytes (`café` in NFC and in NFD are two images).
    var entries: [ByteKey: Entry] = [:]
    private var digestTasks: [ByteKey: Task<Void, Never>] = [:]
    /// Watches the files of attached images (made at the first attach).
    private var watcher: ImageFileWatcher?
    /// The directory images are attached from (``watchImageDirectory(_:)``), and its watcher.
    var imageDirectory: (path: String, watcher: ImageFileWatcher?)?
    /// Set once the missing image directory was reported.
    var imageDirectoryMissing = false
    private nonisolated let failedImages = Atomic<Int>(0)
    /// Images listed as `failed` (configured or saved, not attached), for `/metrics`.
    public nonisolated var failedImageCount: Int { self.failedImages.load(ordering: .relaxed) }

    struct Entry {
        var record: ImageRecord
        var origin: ImageOrigin
        /// Why the image is not attached; nil when it is (the registry has it).
        var failure: String?
        /// What happened to the file on disk that is not a change of its bytes (renamed, deleted).
        var notice: String? = nil

        var isAttached: Bool { self.failure == nil }
    }

    /// - Parameter store: the state directory; nil keeps admin-API changes in memory only.
    public init(cache: SharedPageCache, store: StateStore?, logger: Logger) {
        self.cache = cache
        self.store = store
        self.logger = logger
    }

    // MARK: Start

    /// Attaches the configured images, then the ones saved in the state directory, and applies the saved
    /// quotas. An image that cannot be attached is reported (returned, logged, listed as `failed`, counted in
    /// ``failedImages``) and the others still attach: a configured image not on the node yet must not keep
    /// the daemon down (``retryConfigured()`` attaches it once it is there), unless its id is in `required`.
    /// - Throws: ``ControlError`` for a required configured image that cannot be attached, or a state file
    ///   that cannot be read.
    @discardableResult
    public func start(
        configured: [ImageRecord], required: Set<String> = []
    ) throws(ControlError) -> [(id: String, reason: String)] {
        var failures: [(id: String, reason: String)] = []
        for record in configured {
            do throws(ControlError) {
                let (image, mode) = try self.prepare(
                    record, taken: "image \(record.id) is configured twice", checking: true)
                try self.apply(record, image: image, mode: mode, origin: .configuration)
            } catch {
                if required.contains(record.id) || error.code == .imageExists { throw error }
                failures.append((record.id, error.message))
                self.recordFailure(record, origin: .configuration, error)
            }
        }
        let saved = try self.store?.load() ?? PersistentState()
        for record in saved.images {
            do throws(ControlError) {
                let (image, mode) = try self.prepare(
                    record, taken: "the id is taken by a configured image", checking: true)
                try self.apply(record, image: image, mode: mode, origin: .api)
            } catch {
                failures.append((record.id, error.message))
                self.recordFailure(record, origin: .api, error)
            }
        }
        for (name, bytes) in saved.quotas {
            guard let domain = try? TrustDomain(name) else { continue }
            self.cache.setQuota(bytes, for: domain)
        }
        return failures
    }

    /// An image that could not be attached: listed as `failed` with the reason, and logged.
    func recordFailure(_ record: ImageRecord, origin: ImageOrigin, _ error: ControlError, log: Bool = true) {
        self.entries[ByteKey(record.id)] = Entry(record: record, origin: origin, failure: error.message)
        self.failedImages.add(1, ordering: .relaxed)
        guard log else { return }
        self.logger.error(
            origin == .configuration
                ? "configured image not attached" : origin == .api ? "saved image not attached" : "image not attached",
            metadata: ["image": "\(record.id)", "error": "\(error.message)"])
    }

    /// A failed entry was removed by its owner (to be tried again, or forgotten).
    func forgetFailure() { self.failedImages.subtract(1, ordering: .relaxed) }

    /// Tries again to attach the configured images that failed (their file was not there yet, or not
    /// readable): called periodically and on SIGHUP. Returns the ids attached now.
    @discardableResult
    public func retryConfigured() -> [String] {
        var attached: [String] = []
        for (key, entry) in self.entries where entry.origin == .configuration && !entry.isAttached {
            self.entries[key] = nil
            do throws(ControlError) {
                let (image, mode) = try self.prepare(entry.record, taken: "", checking: true)
                try self.apply(entry.record, image: image, mode: mode, origin: .configuration)
                self.failedImages.subtract(1, ordering: .relaxed)
                attached.append(entry.record.id)
            } catch {
                // Still failing: kept as it was, logged only if the reason changed.
                var kept = entry
                kept.failure = error.message
                self.entries[key] = kept
                if error.message != entry.failure {
                    self.logger.error(
                        "configured image not attached",
                        metadata: ["image": "\(entry.record.id)", "error": "\(error.message)"])
                }
            }
        }
        return attached
    }

    /// Stops the background digest computations and the file watcher (shutdown).
    public func stop() {
        self.imageDirectory?.watcher?.stop()
        self.imageDirectory = nil
        for task in self.digestTasks.values { task.cancel() }
        self.digestTasks = [:]
        self.watcher?.stop()
        self.watcher = nil
    }

    /// Looks at image `id`'s file after inotify saw something happen to it: bytes written (size or mtime
    /// differ from the open descriptor's at attach) mark the image changed in the cache, which drops its
    /// pages and fails its reads; a rename or deletion is only reported, since the open descriptor still
    /// holds the attached bytes.
    public func fileEvent(id: String) {
        guard var entry = self.entries[ByteKey(id)], entry.isAttached,
            let image = self.cache.registry.attachment(id: id)?.image
        else { return }
        if let reason = image.contentChange() {
            self.cache.markChanged(id: id, image: image, reason: reason)
            return
        }
        guard let file = image.file else { return }
        let path = entry.record.path
        let notice: String?
        if let now = try? file.currentStatus(), now.linkCount == 0 {
            notice = "\(path) was deleted on disk; the attached file is still served (held open)"
        } else if let atPath = FileStatus(path: path), atPath.isSameFile(as: file.openedStatus) {
            notice = nil
        } else {
            notice = "\(path) was replaced or renamed on disk; the attached file is still served (held open)"
        }
        guard notice != entry.notice else { return }
        entry.notice = notice
        self.entries[ByteKey(id)] = entry
        if let notice {
            self.logger.warning("image file replaced on disk", metadata: ["image": "\(id)", "reason": "\(notice)"])
        }
    }

    // MARK: Changes

    /// Attaches `record` (admin API): checks it, opens the image, saves the new state, then attaches.
    /// - Throws: ``ControlError``: `invalidRequest`, `imageExists`, `imageUnusable` (with the format error's
    ///   message), `stateWriteFailed`; in each case nothing changed.
    ///
    /// With `check`, the whole image is read first, on the cache's fill threads (the catalog stays free
    /// meanwhile), and refused with the problems found.
    public func attach(_ record: ImageRecord) async throws(ControlError) -> ImageStatus {
        var checked: (Image, FingerprintMode)? = nil
        if record.check {
            try record.validate()
            let opened = try Self.open(record)
            let executor = self.cache.fillExecutor
            let problems = await Task(executorPreference: executor) { Self.problems(of: opened.0, record) }.value
            if let problems { throw problems }
            checked = opened
        }
        // The image checked is the one attached (its file stays open), not the path opened again.
        let (image, mode) = try self.prepare(record, taken: "image \(record.id) is already attached", opened: checked)
        var state = self.persistentState
        state.images.append(record)
        try self.store?.save(state)
        try self.apply(record, image: image, mode: mode, origin: .api)
        return self.status(of: record.id)!
    }

    /// Detaches image `id`, or forgets a failed one. A configured image comes back on the next start.
    /// - Throws: ``ControlError`` (`unknownImage`, `stateWriteFailed`; then nothing changed).
    public func detach(id: String) throws(ControlError) {
        guard let entry = self.entries[ByteKey(id)] else {
            throw ControlError(.unknownImage, "no image \(id) is attached")
        }
        if entry.origin == .api {
            var state = self.persistentState
            state.images.removeAll { ByteKey($0.id) == ByteKey(id) }
            try self.store?.save(state)
        }
        self.entries[ByteKey(id)] = nil
        if !entry.isAttached { self.failedImages.subtract(1, ordering: .relaxed) }
        self.digestTasks.removeValue(forKey: ByteKey(id))?.cancel()
        self.watcher?.unwatch(id: id)
        if entry.isAttached { try? self.cache.detach(id: id) }
        self.logger.info("detached", metadata: ["image": "\(id)"])
    }

    /// Sets (or with nil, removes) `domain`'s quota of resident bytes.
    /// - Throws: ``ControlError`` (`invalidRequest`, `stateWriteFailed`; then nothing changed).
    public func setQuota(_ bytes: Int?, domain name: String) throws(ControlError) {
        guard let domain = try? TrustDomain(name) else {
            throw ControlError(.invalidRequest, "domain must be 1-255 printable ASCII characters")
        }
        if let bytes, bytes < 0 { throw ControlError(.invalidRequest, "quota must be 0 or more bytes") }
        var state = self.persistentState
        state.quotas[name] = bytes
        try self.store?.save(state)
        self.cache.setQuota(bytes, for: domain)
        self.logger.info("quota", metadata: ["domain": "\(name)", "bytes": "\(bytes.map(String.init) ?? "none")"])
    }

    // MARK: Views

    /// Every image, by id.
    public func list() -> [ImageStatus] { self.entries.keys.map(\.string).sorted().compactMap { self.status(of: $0) } }

    /// Image `id`.
    /// - Throws: ``ControlError`` (`unknownImage`).
    public func status(id: String) throws(ControlError) -> ImageStatus {
        guard let status = self.status(of: id) else { throw ControlError(.unknownImage, "no image \(id) is attached") }
        return status
    }

    // MARK: Internals

    /// What the state directory holds: the images attached through the admin API, and the quotas (only this
    /// actor sets them, so the cache's are the ones to save).
    private var persistentState: PersistentState {
        PersistentState(
            images: self.entries.values.filter { $0.origin == .api }.map(\.record).sorted { $0.id < $1.id },
            quotas: self.cache.registry.domains.reduce(into: [:]) { quotas, domain in
                quotas[domain.name] = self.cache.registry.quota(for: domain)
            })
    }

    private func status(of id: String) -> ImageStatus? {
        guard let entry = self.entries[ByteKey(id)] else { return nil }
        let record = entry.record
        let attachment = entry.isAttached ? self.cache.registry.attachment(id: id) : nil
        var status = ImageStatus(
            id: record.id, path: record.path, domain: record.domain, fingerprint: record.fingerprint,
            mode: attachment?.mode.rawValue, verify: record.verify, devices: record.devices, origin: entry.origin,
            state: .failed, reason: entry.failure)
        guard let attachment else { return status }
        status.state = .ready
        status.reason = entry.notice
        status.statistics = (try? self.cache.statistics(forImage: id)).map(ImageStatus.Statistics.init)
        if attachment.mode == .digest, let progress = try? self.cache.digestProgress(imageID: id) {
            status.progress = ImageStatus.Progress(progress)
            switch progress.state {
            case .idle, .hashing: status.state = .attaching
            case .ready: break
            case .failed(let reason): status.reason = "digests are computed on first read: \(reason)"
            }
        }
        if let change = attachment.changeReason {
            status.state = .changed
            status.reason = change
        }
        return status
    }

    /// Checks `record` (valid, its id free, else `taken` is the error) and opens its image (or takes the one
    /// `opened` already); changes nothing. A configured or saved image with `check` is checked here, at start.
    func prepare(
        _ record: ImageRecord, taken: String, checking: Bool = false, opened: (Image, FingerprintMode)? = nil
    ) throws(ControlError) -> (Image, FingerprintMode) {
        try record.validate()
        guard self.entries[ByteKey(record.id)] == nil else { throw ControlError(.imageExists, taken) }
        if let opened { return opened }
        let (image, mode) = try Self.open(record)
        if checking && record.check, let problems = Self.problems(of: image, record) { throw problems }
        return (image, mode)
    }

    /// What `pageshare check` finds in `image` (at most five problems), as the error refusing it; nil
    /// when it is sound.
    private static func problems(of image: Image, _ record: ImageRecord) -> ControlError? {
        let report = image.checkAll(maximumProblems: 5) { try ContentDigest.verifyFingerprint(image, $0) }
        guard !report.problems.isEmpty else { return nil }
        let listed = report.problems.map(\.description).joined(separator: "; ")
        return ControlError(
            .imageUnusable, "\(record.path): check found \(report.problems.count) problem(s): \(listed)")
    }

    /// Opens the image of `record` and picks its fingerprint mode.
    private static func open(_ record: ImageRecord) throws(ControlError) -> (Image, FingerprintMode) {
        // Only files and block devices hold images; opening a FIFO or a character device could block or
        // read without end.
        for path in [record.path] + record.devices {
            var status = stat()
            guard stat(path, &status) == 0 else {
                throw ControlError(.imageUnusable, "\(path): \(String(cString: strerror(errno)))")
            }
            let type = status.st_mode & S_IFMT
            guard type == S_IFREG || type == S_IFBLK else {
                throw ControlError(.imageUnusable, "\(path): not a regular file or block device")
            }
        }
        do {
            let image = try Image(path: record.path, devicePaths: record.devices)
            return (image, record.fingerprint.mode(for: image))
        } catch let error as EROFSError {
            // The reader's errors name the image file already.
            throw ControlError(.imageUnusable, "\(error)")
        } catch {
            throw ControlError(.imageUnusable, "\(record.path): \(error)")
        }
    }

    /// Attaches an opened image to the cache and records it; starts computing digests in `digest` mode.
    func apply(
        _ record: ImageRecord, image: Image, mode: FingerprintMode, origin: ImageOrigin
    ) throws(ControlError) {
        do {
            try self.cache.attach(
                image, id: record.id, domain: try TrustDomain(record.domain), mode: mode, verify: record.verify)
        } catch {
            throw ControlError(.imageExists, "image \(record.id): \(error)")
        }
        self.entries[ByteKey(record.id)] = Entry(record: record, origin: origin, failure: nil)
        if self.watcher == nil {
            self.watcher = ImageFileWatcher { [weak self] id in Task { await self?.fileEvent(id: id) } }
        }
        for path in [record.path] + record.devices { self.watcher?.watch(path, id: record.id) }
        self.logger.info(
            "attached",
            metadata: [
                "image": "\(record.id)", "path": "\(record.path)", "domain": "\(record.domain)",
                "fingerprint": "\(mode)", "origin": "\(origin.rawValue)",
            ])
        if mode == .digest {
            let (cache, logger, id) = (self.cache, self.logger, record.id)
            self.digestTasks[ByteKey(id)] = Task { await Self.computeDigests(of: id, cache: cache, logger: logger) }
        }
    }

    /// Hashes the files of image `id` in the background, logging progress every five seconds and the result.
    private static func computeDigests(of id: String, cache: SharedPageCache, logger: Logger) async {
        let started = ContinuousClock.now
        let reporter = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(5))
                guard let progress = try? cache.digestProgress(imageID: id), progress.state == .hashing else {
                    continue
                }
                logger.info(
                    "hashing",
                    metadata: [
                        "image": "\(id)", "files": "\(progress.filesDone)/\(progress.filesTotal)",
                        "percent": "\(Int(progress.percent))",
                    ])
            }
        }
        try? await cache.precomputeDigests(imageID: id)
        reporter.cancel()
        guard let progress = try? cache.digestProgress(imageID: id), progress.state != .idle else { return }
        logger.notice(
            "digests",
            metadata: [
                "image": "\(id)", "state": "\(progress.state)", "files": "\(progress.filesDone)",
                "bytes": "\(progress.bytesDone)", "seconds": "\((ContinuousClock.now - started).components.seconds)",
            ])
    }
}
