import CXXHash
import Crypto
import Foundation

/// Chunk maps kept on disk (under the daemon's state directory), so that after a restart a miss reads only
/// the chunk it needs instead of cutting its whole window again. One append-only file per shared content
/// (named by a hash of its domain, fingerprint, size and the chunking parameters); each cut window is one
/// record, written with a single `write` and checked by an XXH3-64 sum: a torn or damaged record ends the
/// file's reading, and a record that does not tile its window exactly is refused. A map read back is
/// trusted only as far as the bytes agree: a chunk whose bytes do not have the recorded identity sends its
/// window to be cut again.
struct ChunkMapArchive: Sendable {
    let directory: String

    private static let magic: UInt32 = 0x5743_5350  // "PSCW"

    /// The archive file of shared file `key` cut with `chunker` in windows of `windowBytes`; nil for a file
    /// cached privately (nothing identifies its content across restarts).
    func path(for key: FileKey, chunker: ContentDefinedChunker, windowBytes: Int) -> String? {
        guard case .shared(let domain, let fingerprint, let size) = key else { return nil }
        var hasher = SHA256()
        hasher.update(data: Array(domain.name.utf8) + [0] + fingerprint)
        for value in [size, UInt64(chunker.averageBytes), UInt64(windowBytes)] {
            withUnsafeBytes(of: value.littleEndian) { hasher.update(bufferPointer: $0) }
        }
        let name = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        return "\(self.directory)/\(name).chunks"
    }

    /// The windows recorded in `path` for a file of `size` bytes: window number → references (a later
    /// record of a window replaces an earlier one). Empty when there is no file.
    static func load(_ path: String, size: UInt64, windowBytes: Int, maximumChunk: Int) -> [Int: [ChunkReference]] {
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        // Its modification time says when it was last used (read here, or appended to): see `sweep`.
        utimensat(AT_FDCWD, path, nil, 0)
        var windows: [Int: [ChunkReference]] = [:]
        data.withUnsafeBytes { raw in
            var offset = 0
            func read<T: FixedWidthInteger>(_: T.Type) -> T? {
                guard offset + MemoryLayout<T>.size <= raw.count else { return nil }
                defer { offset += MemoryLayout<T>.size }
                return T(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: T.self))
            }
            while true {
                let start = offset
                guard read(UInt32.self) == Self.magic, let number = read(UInt64.self), let count = read(UInt32.self),
                    offset + Int(count) * 24 + 8 <= raw.count
                else { return }
                var references: [ChunkReference] = []
                references.reserveCapacity(Int(count))
                for _ in 0..<count {
                    references.append(
                        ChunkReference(
                            start: read(UInt32.self)!, length: read(UInt32.self)!, low: read(UInt64.self)!,
                            high: read(UInt64.self)!))
                }
                let sum = XXH3_64bits(raw.baseAddress! + start, offset - start)
                guard read(UInt64.self) == sum,
                    Self.tiles(
                        references, window: number, size: size, windowBytes: windowBytes, maximumChunk: maximumChunk)
                else { return }
                windows[Int(number)] = references
            }
        }
        return windows
    }

    /// Appends window `number`'s references to `path` (created 0600); failures only cost a cut later.
    static func append(_ path: String, window number: Int, references: [ChunkReference]) {
        var record: [UInt8] = []
        record.reserveCapacity(16 + references.count * 24 + 8)
        func put<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { record.append(contentsOf: $0) }
        }
        put(Self.magic)
        put(UInt64(number))
        put(UInt32(references.count))
        for reference in references {
            put(reference.start)
            put(reference.length)
            put(reference.low)
            put(reference.high)
        }
        put(record.withUnsafeBytes { XXH3_64bits($0.baseAddress, $0.count) })
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        _ = record.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }

    /// Removes the archives of `directory` not used (read at a first open, or appended to) in the last
    /// `unused`: the maps of content detached while the daemon was down, or not read for that long, would
    /// otherwise stay for ever (a map is 0.7 % of its content, and a removed one only costs a cut). Returns
    /// the number removed.
    static func sweep(_ directory: String, unusedFor unused: Duration, now: Date = Date()) -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return 0 }
        let cutoff = now.timeIntervalSince1970 - Double(unused.components.seconds)
        var removed = 0
        for name in names where name.hasSuffix(".chunks") {
            let path = directory + "/" + name
            var status = stat()
            guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG,
                Double(status.st_mtim.tv_sec) < cutoff, unlink(path) == 0
            else { continue }
            removed += 1
        }
        return removed
    }

    /// Whether `references` cover window `number` of a `size`-byte file exactly, in order, none longer than
    /// a chunk can be.
    private static func tiles(
        _ references: [ChunkReference], window number: UInt64, size: UInt64, windowBytes: Int, maximumChunk: Int
    ) -> Bool {
        let start = number * UInt64(windowBytes)
        guard start < size else { return false }
        let length = min(UInt64(windowBytes), size - start)
        var next: UInt64 = 0
        for reference in references {
            guard UInt64(reference.start) == next, reference.length > 0, reference.length <= maximumChunk else {
                return false
            }
            next += UInt64(reference.length)
        }
        return next == length
    }
}
