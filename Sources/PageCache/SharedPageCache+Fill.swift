import EROFS
import Synchronization

/// Filling from the images: every store's miss reads its bytes from the first sharer of the file that can
/// supply them, checking that the image did not change under the read.
extension SharedPageCache {
    /// A fill that raced with the detach of the file's last sharer published pages (or chunks) nobody can
    /// reach: they go at once instead of holding budget until evicted.
    func dropIfOrphaned(_ file: SharedFile) {
        if file.sharerCount == 0 { self.purgePages(of: [file]) }
    }

    /// Throws `imageChanged` (and marks the image) when `sharer`'s image file was written to since it was
    /// attached: two `fstat`s per fill keep a changed image's bytes out of the cache even where inotify
    /// cannot see the write (another host's write on a network filesystem, a full event queue).
    func checkUnchanged(_ sharer: Sharer) throws {
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
    /// - Throws: `unknownImage` when no image holds the file any more (detached while the read ran),
    ///   `imageChanged`, or `fillFailed` with the last sharer's error.
    func fill(
        _ file: SharedFile, at offset: UInt64, into memory: UnsafeMutableRawBufferPointer, context: ReadContext
    ) throws -> Sharer {
        let sharers = file.sharers.withLock { $0 }
        // A read that opened the file before the detach of the last image holding it: that image is gone.
        guard !sharers.isEmpty else {
            throw PageCacheError(.unknownImage, "the images holding this file were detached during the read")
        }
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
}
