import Foundation
import PageCache
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Watches the files of attached images with inotify and reports every event on one to `onEvent` (the
/// image's id), from a thread of its own: modifications (`IN_MODIFY`, `IN_CLOSE_WRITE`), attribute and link
/// count changes (`IN_ATTRIB`: chmod, a write's mtime, an unlink of the open file), renames (`IN_MOVE_SELF`)
/// and deletions (`IN_DELETE_SELF`). What an event means is for the receiver to find out (`fstat` of the
/// open descriptor, `stat` of the path): inotify says only that something happened.
final class ImageFileWatcher: Sendable {
    private let descriptor: Int32
    /// A pipe whose write end ``stop()`` closes to wake the thread, which then closes the rest.
    private let wakeup: (read: Int32, write: Int32)
    /// Image ids by watch descriptor (ids compared as bytes).
    private let watches = Mutex<[Int32: Set<ByteKey>]>([:])
    private let onEvent: @Sendable (String) -> Void

    /// Starts the watching thread; nil when inotify is not available (then only the checks before each
    /// fill notice a changed image).
    init?(onEvent: @escaping @Sendable (String) -> Void) {
        let descriptor = inotify_init1(Int32(IN_CLOEXEC))
        guard descriptor >= 0 else { return nil }
        var pipe: [Int32] = [-1, -1]
        guard Glibc.pipe(&pipe) == 0 else {
            close(descriptor)
            return nil
        }
        for end in pipe { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        self.descriptor = descriptor
        self.wakeup = (pipe[0], pipe[1])
        self.onEvent = onEvent
        let thread = Thread { [self] in self.run() }
        thread.start()
    }

    /// Stops the thread (it closes the inotify descriptor as it ends).
    func stop() { close(self.wakeup.write) }

    /// What happens to an image file.
    static let fileEvents = UInt32(IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF)
    /// What happens in a directory of images: entries made, written, moved in or out, removed.
    static let directoryEvents = UInt32(
        IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF)

    /// Watches `path` for `events`, reported as `id` (several ids may watch one path).
    func watch(_ path: String, id: String, events: UInt32 = ImageFileWatcher.fileEvents) {
        let mask = events
        let watch = inotify_add_watch(self.descriptor, path, mask)
        guard watch >= 0 else { return }
        self.watches.withLock { _ = $0[watch, default: []].insert(ByteKey(id)) }
    }

    /// Stops reporting events for image `id`.
    func unwatch(id: String) {
        let emptied = self.watches.withLock { watches -> [Int32] in
            var emptied: [Int32] = []
            for (watch, ids) in watches where ids.contains(ByteKey(id)) {
                watches[watch] = ids.subtracting([ByteKey(id)])
                if watches[watch]?.isEmpty == true {
                    watches[watch] = nil
                    emptied.append(watch)
                }
            }
            return emptied
        }
        for watch in emptied { inotify_rm_watch(self.descriptor, watch) }
    }

    private func run() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 8)
        defer {
            buffer.deallocate()
            close(self.descriptor)
            close(self.wakeup.read)
        }
        while true {
            var descriptors = [
                pollfd(fd: self.descriptor, events: Int16(POLLIN), revents: 0),
                pollfd(fd: self.wakeup.read, events: Int16(POLLIN), revents: 0),
            ]
            guard poll(&descriptors, 2, -1) >= 0 || errno == EINTR else { return }
            if descriptors[1].revents != 0 { return }
            guard descriptors[0].revents != 0 else { continue }
            let count = read(self.descriptor, buffer.baseAddress, buffer.count)
            if count < 0 {
                if errno == EINTR { continue }
                return
            }
            var offset = 0
            var touched: Set<ByteKey> = []
            while offset + MemoryLayout<inotify_event>.size <= count {
                let event = buffer.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                if event.mask & UInt32(IN_Q_OVERFLOW) != 0 {
                    // Events were lost: look at every watched image.
                    touched.formUnion(self.watches.withLock { $0.values.flatMap { $0 } })
                } else if let ids = self.watches.withLock({ $0[event.wd] }) {
                    touched.formUnion(ids)
                }
                offset += MemoryLayout<inotify_event>.size + Int(event.len)
            }
            for id in touched { self.onEvent(id.string) }
        }
    }
}
