import EROFS

/// A regular file of an attached image, opened for reading through the shared cache (see
/// ``SharedPageCache/open(imageID:inode:)``). Cheap to copy; holds the file's dedup inode, so reads do no
/// registry lookup.
public struct CachedFile: Sendable {
    let cache: SharedPageCache
    let file: SharedFile
    /// The reading image's counters.
    let reader: ImageCounters

    /// The file's size in bytes.
    public var size: UInt64 { self.file.size }

    /// The SHA-256 of the content the file is shared under (from a `sha256:` ishare xattr, or the digest
    /// PageShare computed); nil for a privately cached file or an opaque fingerprint.
    public var contentDigest: [UInt8]? { self.file.contentDigest }

    /// Reads from `offset` into `buffer`, filling missing pages (single flight); returns the byte count, 0 at
    /// or past the end.
    /// - Throws: ``PageCacheError`` (`fillFailed`, with the image's `EROFSError` as cause) when no attached
    ///   image could supply a page.
    /// Runs on the cache's ``SharedPageCache/fillExecutor`` whatever the caller's executor.
    public func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
        try await self.cache.read(self.file, reader: self.reader, at: offset, into: .copy(into: buffer))
    }

    /// Reads up to `maxBytes` from `offset` (filling what is missing, single flight, on the cache's fill
    /// executor) and lends them from the cache's memory: the bytes a miss just published are handed back
    /// without copying them out. A loan may be shorter than asked, and nil when nothing could be lent (at
    /// or past the end, or the cache did not keep the bytes: a domain at its quota, no room, eviction racing
    /// the read): the caller reads the rest with ``read(at:into:)``.
    /// - Throws: as ``read(at:into:)``.
    public func readLent(at offset: UInt64, maxBytes: Int) async throws -> PageLoan? {
        let count = try await self.cache.read(self.file, reader: self.reader, at: offset, into: .resident(maxBytes))
        guard count > 0 else { return nil }
        return self.cache.borrowResident(self.file, reader: self.reader, at: offset, maxBytes: count, counting: .never)
    }

    /// Copies from `offset` into `buffer` as long as the pages are resident; returns the bytes copied (less
    /// than asked at the first missing page). Never blocks on I/O or on another reader's fill.
    public func readResident(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        self.cache.readResident(self.file, reader: self.reader, at: offset, into: buffer)
    }

    /// Copies `buffer.count` bytes from `offset` if every one is resident (fewer only at the end of the file)
    /// and returns how many; else returns 0, having counted nothing (what it copied is to be ignored). For a
    /// small body sent whole when it can be, and streamed through ``readResident(at:into:)`` and the fills
    /// otherwise. Never blocks on I/O or on another reader's fill.
    public func readResidentWhole(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let expected = offset < self.size ? Int(min(UInt64(buffer.count), self.size - offset)) : 0
        let copied = self.cache.readResident(
            self.file, reader: self.reader, at: offset, into: buffer, counting: .ifWhole)
        return copied == expected ? copied : 0
    }

    /// Lends the resident pages from `offset`, up to `maxBytes`, without copying (see ``PageLoan``); stops at
    /// the first missing page, nil when that is the first. Never blocks on I/O or on another reader's fill.
    public func borrowResident(at offset: UInt64, maxBytes: Int) -> PageLoan? {
        self.cache.borrowResident(self.file, reader: self.reader, at: offset, maxBytes: maxBytes)
    }
}
