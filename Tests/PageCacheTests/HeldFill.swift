import Dispatch
import EROFS
import EROFSTestSupport
import Foundation
import PageCache
import Synchronization

/// A fill held in the middle: image `a` in a domain holds file `/f`, and a read of its first page is stopped
/// inside the image read until ``release()`` — for what may happen to the cache meanwhile.
struct HeldFill {
    /// The file's bytes.
    let bytes: [UInt8]
    let file: CachedFile
    /// The held read of the first page; its value is the page's bytes.
    let firstPage: Task<[UInt8], any Error>
    private let source: GatedImageSource

    /// Attaches the image (with `quota` for `domain`, if given), opens the file and starts the read, returning
    /// once it is held.
    static func start(
        _ cache: SharedPageCache, domain: TrustDomain, content: String, quota: Int? = nil
    ) async throws -> HeldFill {
        let bytes = CacheFixtures.content(content, pages: 2)
        let source = GatedImageSource(try CacheFixtures.imageBytes([("f", bytes)]))
        let image = try Image(source: source)
        try cache.attach(image, id: "a", domain: domain, mode: .none)
        if let quota { cache.setQuota(quota, for: domain) }
        let file = try cache.open(imageID: "a", inode: try image.resolve("/f"))
        source.arm()
        // On the cache's own fill threads: the held read blocks a thread, which must not be one of the test pool's.
        let firstPage = Task(executorPreference: cache.fillExecutor) {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
            defer { buffer.deallocate() }
            return Array(buffer[0..<(try await file.read(at: 0, into: buffer))])
        }
        await source.waitUntilEntered()
        return HeldFill(bytes: bytes, file: file, firstPage: firstPage, source: source)
    }

    /// Lets the held read go on.
    func release() { self.source.release() }
}

/// An image source whose next read, once armed, waits until released: a fill can be held in the middle.
final class GatedImageSource: ImageSource, @unchecked Sendable {  // the semaphores and the atomic are the state
    private let inner: MemoryImageSource
    private let armed = Atomic<Bool>(false)
    private let entered = DispatchSemaphore(value: 0)
    private let released = DispatchSemaphore(value: 0)

    init(_ bytes: [UInt8]) { self.inner = MemoryImageSource(bytes) }

    var size: UInt64 { self.inner.size }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        if self.armed.exchange(false, ordering: .acquiringAndReleasing) {
            self.entered.signal()
            self.released.wait()
        }
        try self.inner.read(into: buffer, at: offset)
    }

    func arm() { self.armed.store(true, ordering: .releasing) }
    func release() { self.released.signal() }

    /// Waits (off the cooperative pool) until a read is held.
    func waitUntilEntered() async {
        await withCheckedContinuation { continuation in
            Thread {
                self.entered.wait()
                continuation.resume()
            }.start()
        }
    }
}
