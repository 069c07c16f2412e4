import EROFS
import Synchronization

/// How far the digests of an image attached in `digest` mode have been computed.
public struct DigestProgress: Sendable, Hashable {
    public enum State: Sendable, Hashable, CustomStringConvertible {
        /// Not started (or the image is not in `digest` mode: nothing to compute).
        case idle
        case hashing
        case ready
        /// The walk or a file failed; files not hashed are hashed on their first open instead.
        case failed(String)

        public var description: String {
            switch self {
            case .idle: "idle"
            case .hashing: "hashing"
            case .ready: "ready"
            case .failed(let reason): "failed: \(reason)"
            }
        }
    }

    public var state: State
    public var filesDone: Int
    public var filesTotal: Int
    public var bytesDone: UInt64
    public var bytesTotal: UInt64

    /// Percent of the bytes hashed (100 for an image with no bytes).
    public var percent: Double {
        self.bytesTotal == 0 ? (self.state == .ready ? 100 : 0) : Double(self.bytesDone) * 100 / Double(self.bytesTotal)
    }
}

/// The precomputed digests of one image (nid → sha256) and the progress of computing them.
final class DigestTable: Sendable {
    private let digests = Mutex<[UInt64: [UInt8]]>([:])
    private let progress = Mutex(
        DigestProgress(state: .idle, filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0))

    func digest(for nid: UInt64) -> [UInt8]? { self.digests.withLock { $0[nid] } }
    var snapshot: DigestProgress { self.progress.withLock { $0 } }

    func begin(files: Int, bytes: UInt64) {
        self.progress.withLock {
            $0 = DigestProgress(state: .hashing, filesDone: 0, filesTotal: files, bytesDone: 0, bytesTotal: bytes)
        }
    }

    func record(_ digest: [UInt8], nid: UInt64, bytes: UInt64) {
        self.digests.withLock { $0[nid] = digest }
        self.progress.withLock {
            $0.filesDone += 1
            $0.bytesDone += bytes
        }
    }

    func finish(_ state: DigestProgress.State) { self.progress.withLock { $0.state = state } }
}

extension SharedPageCache {
    /// Hashes every regular file of image `imageID` (attached in `digest` mode) ahead of its first read, on
    /// the fill threads, `parallelism` files at a time; progress is visible through
    /// ``digestProgress(imageID:)`` meanwhile. Files already opened keep their dedup inode; files opened
    /// before their digest is ready are hashed on open as usual. Returns when every file is hashed.
    /// - Throws: ``PageCacheError`` (`unknownImage`); a failure of the walk or of one file is recorded as
    ///   the `failed` state instead, and the remaining files are hashed on first open.
    public func precomputeDigests(imageID: String, parallelism: Int? = nil) async throws {
        let attached = try self.attachedImage(imageID)
        guard attached.mode == .digest else { return }
        let table = attached.digestTable
        var files: [Inode] = []
        var seen: Set<UInt64> = []
        do {
            try attached.image.walk { _, inode in
                if inode.fileType == .regular, seen.insert(inode.nid).inserted { files.append(inode) }
            }
        } catch {
            table.finish(.failed("walking the image: \(error)"))
            return
        }
        table.begin(files: files.count, bytes: files.reduce(0) { $0 + $1.size })
        let width = max(1, parallelism ?? self.fillExecutor.threadCount)
        let image = attached.image
        let failure = await withTaskGroup(of: String?.self) { group -> String? in
            var next = 0
            func addNext() {
                // Cancellation (shutdown) stops handing out files; those left are hashed on first open.
                guard next < files.count, !Task.isCancelled else { return }
                let inode = files[next]
                next += 1
                group.addTask(executorPreference: self.fillExecutor) {
                    do {
                        table.record(try ContentDigest.sha256(image, inode), nid: inode.nid, bytes: inode.size)
                        return nil
                    } catch {
                        return "nid \(inode.nid): \(error)"
                    }
                }
            }
            for _ in 0..<width { addNext() }
            var first: String? = nil
            while let result = await group.next() {
                if first == nil, let result { first = result }
                addNext()
            }
            return first
        }
        if Task.isCancelled && failure == nil {
            table.finish(.failed("cancelled; the remaining files are hashed on first open"))
        } else {
            table.finish(failure.map { .failed($0) } ?? .ready)
        }
    }

    /// Progress of ``precomputeDigests(imageID:parallelism:)`` for image `imageID`.
    /// - Throws: ``PageCacheError`` (`unknownImage`).
    public func digestProgress(imageID: String) throws -> DigestProgress {
        try self.attachedImage(imageID, reading: false).digestTable.snapshot
    }
}
