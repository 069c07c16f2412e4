import EROFS
import Logging
import PageCache

#if canImport(Glibc)
import Glibc
#endif

/// The image directory (`imageDirectory:`, `--image-dir`): every EROFS image file in it is attached, in the
/// domain named by its subdirectory (`DIR/team-a/app.erofs` → image `app` in domain `team-a`; files directly
/// in `DIR` go to `default`), and detached when it goes. inotify on the directory and its subdirectories
/// triggers a scan that reconciles what is there with what is attached; the periodic retry scans too, in
/// case events were lost.
///
/// Image files are named `*.erofs` or `*.img`; names starting with `.` are ignored, so that tools can write
/// a file under a hidden name and rename it into place. A file that is not (yet) a valid image is listed
/// as `failed` and tried again at the next scan; a file replaced by another (a rename over it) or written to
/// in place is attached again with its new content. Directory images are not written to the state
/// directory: the directory is their record.
extension ImageCatalog {
    /// Attaches the images in `path` and watches it. The ids of images already attached otherwise
    /// (configured, admin API) are not taken over; such a file is reported.
    public func watchImageDirectory(_ path: String) {
        let watcher = ImageFileWatcher { [weak self] _ in Task { await self?.scanImageDirectory() } }
        self.imageDirectory = (path, watcher)
        self.scanImageDirectory()
    }

    /// Reconciles the image directory with the attached directory images.
    public func scanImageDirectory() {
        guard let (root, watcher) = self.imageDirectory else { return }
        guard Self.isType(root, S_IFDIR) else {
            // Not there (yet): its images, if any were attached, are gone; the periodic scan looks again.
            if self.imageDirectoryMissing == false {
                self.logger.error("image directory not found; looking again every 10 s", metadata: ["path": "\(root)"])
            }
            self.imageDirectoryMissing = true
            for (key, entry) in self.entries where entry.origin == .directory { try? self.detach(id: key.string) }
            return
        }
        self.imageDirectoryMissing = false
        watcher?.watch(root, id: "", events: ImageFileWatcher.directoryEvents)
        var found: [ByteKey: ImageRecord] = [:]
        for (directory, domain) in [(root, "default")] + Self.domainDirectories(in: root) {
            if directory != root { watcher?.watch(directory, id: "", events: ImageFileWatcher.directoryEvents) }
            for name in Self.imageFiles(in: directory) {
                let id = String(name[..<name.lastIndex(of: ".")!])
                let record = ImageRecord(id: id, path: directory + "/" + name, domain: domain)
                if let other = found[ByteKey(id)] {
                    self.logger.warning(
                        "image directory: two files for one id, the first is used",
                        metadata: ["image": "\(id)", "used": "\(other.path)", "ignored": "\(record.path)"])
                    continue
                }
                found[ByteKey(id)] = record
            }
        }
        // Gone, moved to another domain, or changed on disk: detached (and attached again below if there).
        for (key, entry) in self.entries where entry.origin == .directory {
            let wanted = found[key]
            let replaced =
                entry.isAttached && !self.isUnchangedOnDisk(key.string, at: entry.record.path)
            if wanted == nil || wanted != entry.record || replaced {
                try? self.detach(id: key.string)
            }
        }
        var previousFailures: [ByteKey: String?] = [:]
        for (key, record) in found.sorted(by: { $0.value.path < $1.value.path }) {
            if let entry = self.entries[key] {
                guard entry.origin == .directory, !entry.isAttached else {
                    if entry.origin != .directory, entry.record.path != record.path {
                        self.logger.warning(
                            "image directory: the id is taken by an image attached otherwise",
                            metadata: ["image": "\(key.string)", "file": "\(record.path)"])
                    }
                    continue
                }
                previousFailures[key] = entry.failure
                self.entries[key] = nil  // failed before: try again
                self.forgetFailure()
            }
            do throws(ControlError) {
                let (image, mode) = try self.prepare(record, taken: "the id is taken", checking: true)
                try self.apply(record, image: image, mode: mode, origin: .directory)
            } catch {
                // Logged when the reason is new, not at every scan of a file still being written.
                self.recordFailure(record, origin: .directory, error, log: error.message != previousFailures[key])
            }
        }
    }

    /// Subdirectories of `root` named as a valid domain (hidden ones skipped), with that domain.
    private static func domainDirectories(in root: String) -> [(String, String)] {
        Self.names(in: root).compactMap { name in
            let path = root + "/" + name
            guard Self.isType(path, S_IFDIR), (try? TrustDomain(name)) != nil else { return nil }
            return (path, name)
        }
    }

    /// Regular files in `directory` named `*.erofs` or `*.img` (not hidden), sorted.
    private static func imageFiles(in directory: String) -> [String] {
        Self.names(in: directory).filter { name in
            (name.hasSuffix(".erofs") || name.hasSuffix(".img")) && name.utf8.count > 4
                && Self.isType(directory + "/" + name, S_IFREG)
        }
    }

    private static func names(in directory: String) -> [String] {
        guard let stream = opendir(directory) else { return [] }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if !name.hasPrefix(".") { names.append(name) }
        }
        return names.sorted()
    }

    private static func isType(_ path: String, _ type: mode_t) -> Bool {
        var status = stat()
        return lstat(path, &status) == 0 && status.st_mode & S_IFMT == type
    }

    /// Whether attached image `id` is not marked changed and the file at `path` is still the one opened.
    private func isUnchangedOnDisk(_ id: String, at path: String) -> Bool {
        guard let attachment = self.cache.registry.attachment(id: id) else { return false }
        guard attachment.changeReason == nil else { return false }
        guard let file = attachment.image.file else { return true }
        guard let atPath = FileStatus(path: path) else { return false }
        return atPath.isSameFile(as: file.openedStatus)
    }
}
