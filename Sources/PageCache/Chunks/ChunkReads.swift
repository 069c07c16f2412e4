import EROFS
import Synchronization

/// Reads of files shared by chunk (``SharingUnit/chunk``): a range maps to the chunks of its windows, each
/// copied from the chunk store, filled (single flight) on a miss from the first sharer that can supply it.
extension SharedPageCache {
    func readChunks(
        _ file: SharedFile, map: ChunkMap, reader: ImageCounters?, at offset: UInt64,
        into buffer: ReadDestination
    ) async throws -> Int {
        guard offset < file.size, buffer.count > 0 else { return 0 }
        let total = Int(min(UInt64(buffer.count), file.size - offset))
        var done = 0
        windows: while done < total {
            let number = Int((offset + UInt64(done)) / UInt64(map.windowBytes))
            var window = try await self.cutWindow(file, map: map, number: number)
            var index = window.reference(covering: UInt32(offset + UInt64(done) - window.start))
            while done < total && index < window.references.count {
                let chunkStart = window.start + UInt64(window.references[index].start)
                let within = Int(offset + UInt64(done) - chunkStart)
                let count = min(total - done, Int(window.references[index].length) - within)
                do {
                    window = try await self.copyChunk(
                        file, map: map, window: window, index: index, range: buffer.copied(within..<within + count),
                        into: buffer[done..<done + count], reader: reader)
                } catch let mismatch as ChunkMismatch {
                    // A map read back from disk that does not agree with the bytes: cut the window again.
                    guard window.fromArchive else { throw mismatch.failure }
                    map.forget(window)
                    continue windows
                }
                done += count
                index += 1
            }
        }
        file.counters.add(.logicalReadBytes, total)
        reader?.logicalReadBytes.wrappingAdd(total, ordering: .relaxed)
        return total
    }

    /// Window `number` of `file`'s map, cut now if no reader did yet.
    func cutWindow(_ file: SharedFile, map: ChunkMap, number: Int) async throws -> ChunkWindow {
        while true {
            switch map.claim(number) {
            case .ready(let window): return window
            case .busy: await map.wait(for: number)
            case .cut:
                do {
                    let window = try self.cut(file, map: map, number: number)
                    map.publish(window)
                    return window
                } catch {
                    map.abandon(number)
                    throw error
                }
            }
        }
    }

    /// Reads window `number` of `file` from a sharer, cuts it into chunks and offers every chunk to the
    /// store (the bytes are in hand: a chunk not resident is stored, an equal resident one joined).
    private func cut(_ file: SharedFile, map: ChunkMap, number: Int) throws -> ChunkWindow {
        let store = self.chunkStore
        let start = UInt64(number) * UInt64(map.windowBytes)
        let length = Int(min(UInt64(map.windowBytes), file.size - start))
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 16)
        defer { bytes.deallocate() }
        _ = try self.fill(file, at: start, into: bytes, context: ReadContext())
        var references: [ChunkReference] = []
        references.reserveCapacity(length / store.chunker.averageBytes + 1)
        var stamps: [UInt64] = []
        stamps.reserveCapacity(references.capacity)
        var apart: Set<Int> = []
        var stored = 0
        var offset = 0
        let isPrivate = map.privatePieceBytes != nil
        Self.forEachPiece(of: UnsafeRawBufferPointer(bytes), fixed: map.privatePieceBytes, chunker: store.chunker) {
            chunk in
            // A private piece needs no identity: its key is its file and offset.
            let identity = isPrivate ? ChunkIdentity(low: 0, high: 0, length: chunk.count) : store.identity(of: chunk)
            let reference = ChunkReference(start: offset, identity: identity)
            var key = ChunkKey(reference, domain: file.counters.chunkScope)
            if isPrivate { key = key.keptApart(file: file.id, offset: start + UInt64(offset)) }
            var offer = store.shard(for: key).offer(key, bytes: chunk, owner: file.counters)
            if offer == .differs && !isPrivate {
                apart.insert(references.count)
                key = key.keptApart(file: file.id, offset: start + UInt64(offset))
                offer = store.shard(for: key).offer(key, bytes: chunk, owner: file.counters)
            }
            switch offer {
            case .stored(let stamp):
                stored += 1
                stamps.append(stamp)
            case .joined(let stamp): stamps.append(stamp)
            case .differs, .skipped: stamps.append(0)
            }
            references.append(reference)
            offset += chunk.count
        }
        file.counters.add(.fills, stored)
        return ChunkWindow(
            number: number, start: start, references: references, stamps: stamps, apart: apart, isPrivate: isPrivate)
    }

    /// Calls `body` with each piece of `bytes`: content-defined chunks, or pieces of `fixed` bytes.
    private static func forEachPiece(
        of bytes: UnsafeRawBufferPointer, fixed: Int?, chunker: ContentDefinedChunker,
        _ body: (UnsafeRawBufferPointer) -> Void
    ) {
        guard let fixed else { return chunker.forEachChunk(of: bytes, body) }
        for start in stride(from: 0, to: bytes.count, by: fixed) {
            body(UnsafeRawBufferPointer(rebasing: bytes[start..<min(start + fixed, bytes.count)]))
        }
    }

    /// Copies `range` of chunk `index` of `window` into `destination`; returns the window as it is now (a
    /// chunk found to differ from the resident one of its identity is kept apart from then on).
    private func copyChunk(
        _ file: SharedFile, map: ChunkMap, window: ChunkWindow, index: Int, range: Range<Int>,
        into destination: UnsafeMutableRawBufferPointer, reader: ImageCounters?
    ) async throws -> ChunkWindow {
        var window = window
        let reference = window.references[index]
        let chunkOffset = window.start + UInt64(reference.start)
        while true {
            let key = window.key(index, domain: file.counters.chunkScope, file: file.id)
            let shard = self.chunkStore.shard(for: key)
            switch shard.lookup(
                key, stamp: window.stamps[index], range: range, into: destination, owner: file.counters)
            {
            case .hit:
                file.counters.add(.hits, 1)
                reader?.hits.wrappingAdd(1, ordering: .relaxed)
                return window
            case .busy:
                await shard.waitForFill(key)
            case .fill(let slot, let memory):
                file.counters.add(.misses, 1)
                reader?.misses.wrappingAdd(1, ordering: .relaxed)
                let context = ReadContext()
                let source: Sharer
                do {
                    source = try self.fillChunk(
                        file, window: window, reference: reference, at: chunkOffset, into: memory, context: context)
                } catch {
                    shard.abandon(key, slot: slot)
                    throw error
                }
                window.stamps[index] = shard.publish(key, slot: slot, range: range, into: destination)
                file.counters.add(.fills, 1)
                reader?.fills.wrappingAdd(1, ordering: .relaxed)
                self.offerAround(file, window: window, filled: index, from: source, context: context)
                self.dropIfOrphaned(file)
                return window
            case .unverified, .bypass:
                // Resident but filled from another file (compare before joining), or no room: this file's own
                // bytes are needed either way.
                file.counters.add(.misses, 1)
                reader?.misses.wrappingAdd(1, ordering: .relaxed)
                let own = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(reference.length), alignment: 16)
                defer { own.deallocate() }
                try self.fillChunk(
                    file, window: window, reference: reference, at: chunkOffset, into: own, context: ReadContext())
                switch shard.join(key, bytes: UnsafeRawBufferPointer(own), range: range, into: destination) {
                case .joined(let stamp):
                    window.stamps[index] = stamp
                    return window
                case .differs where !window.apart.contains(index):
                    window = map.keepApart(index, of: window.number)
                case .gone, .differs:
                    // No longer resident, or kept apart already and its resident copy still differs (the
                    // file's images disagree on these bytes): this reader's own bytes, uncached.
                    destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: own[range]))
                    return window
                }
            }
        }
    }

    /// Reads chunk `reference` of `file` (at file offset `offset`) into `memory`, and checks that the bytes
    /// still have the identity the map recorded: an image whose content changed under its map fails here
    /// instead of placing other bytes under the chunk.
    @discardableResult
    private func fillChunk(
        _ file: SharedFile, window: ChunkWindow, reference: ChunkReference, at offset: UInt64,
        into memory: UnsafeMutableRawBufferPointer, context: ReadContext
    ) throws -> Sharer {
        let source = try self.fill(file, at: offset, into: memory, context: context)
        try self.checkIdentity(of: memory, window: window, reference: reference, at: offset)
        return source
    }

    /// Checks a shared chunk's bytes against its recorded identity (a private piece has none to check).
    private func checkIdentity(
        of bytes: UnsafeMutableRawBufferPointer, window: ChunkWindow, reference: ChunkReference, at offset: UInt64
    ) throws {
        guard !window.isPrivate else { return }
        let identity = self.chunkStore.identity(of: UnsafeRawBufferPointer(bytes))
        guard identity.low == reference.low, identity.high == reference.high else {
            throw ChunkMismatch(offset: offset, length: Int(reference.length))
        }
    }

    /// After a miss in a compressed file, offers the window's other missing chunks that lie inside the
    /// extent just decoded, from `context`'s copy of it: reading a compressed extent decodes all of it, so
    /// without this each chunk of the extent would decode it again. Best effort: a chunk that is being
    /// filled, finds no room or differs from the resident one of its identity is left to its reader.
    private func offerAround(
        _ file: SharedFile, window: ChunkWindow, filled: Int, from source: Sharer, context: ReadContext
    ) {
        guard let extent = context.decodedRange(of: source.inode, in: source.image) else { return }
        let scratch = UnsafeMutableRawBufferPointer.allocate(
            byteCount: self.chunkStore.chunker.maximumBytes, alignment: 16)
        defer { scratch.deallocate() }
        for index in window.references.indices where index != filled {
            let reference = window.references[index]
            let start = window.start + UInt64(reference.start)
            guard start >= extent.lowerBound, start + UInt64(reference.length) <= extent.upperBound else { continue }
            let key = window.key(index, domain: file.counters.chunkScope, file: file.id)
            let shard = self.chunkStore.shard(for: key)
            guard !shard.isCurrent(key, stamp: window.stamps[index]) else { continue }
            let bytes = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<Int(reference.length)])
            do {
                try Self.read(source, at: start, size: file.size, into: bytes, context: context)
                try self.checkIdentity(of: bytes, window: window, reference: reference, at: start)
            } catch {
                return
            }
            switch shard.offer(key, bytes: UnsafeRawBufferPointer(bytes), owner: file.counters) {
            case .stored(let stamp):
                window.stamps[index] = stamp
                file.counters.add(.fills, 1)
            case .joined(let stamp): window.stamps[index] = stamp
            case .differs, .skipped: break
            }
        }
    }
}

extension SharedPageCache {
    /// Walks the chunks from `offset` (up to `maxBytes`, never past the end) in the windows already cut,
    /// handing each chunk's shard, key, byte range and the bytes taken so far to `take`, until a window is
    /// not cut or `take` finds a chunk it cannot have; counts what was taken as hits and one read. Returns
    /// the bytes taken. Never waits or reads an image: the event-loop fast path.
    func takeResidentChunks(
        _ file: SharedFile, map: ChunkMap, reader: ImageCounters, at offset: UInt64, maxBytes: Int,
        counting: ResidentCounting = .always, _ take: (ChunkShard, ChunkKey, UInt64, Range<Int>, Int) -> Bool
    ) -> Int {
        guard offset < file.size, maxBytes > 0 else { return 0 }
        let total = Int(min(UInt64(maxBytes), file.size - offset))
        var done = 0
        var hits = 0
        walk: while done < total {
            guard let window = map.window(Int((offset + UInt64(done)) / UInt64(map.windowBytes))) else { break }
            var index = window.reference(covering: UInt32(offset + UInt64(done) - window.start))
            while done < total && index < window.references.count {
                let reference = window.references[index]
                let within = Int(offset + UInt64(done) - window.start - UInt64(reference.start))
                let count = min(total - done, Int(reference.length) - within)
                let key = window.key(index, domain: file.counters.chunkScope, file: file.id)
                let stamp = window.stamps[index]
                guard stamp != 0, take(self.chunkStore.shard(for: key), key, stamp, within..<within + count, done)
                else {
                    break walk
                }
                done += count
                hits += 1
                index += 1
            }
        }
        if counting.counts(taken: done, of: total) {
            self.noteResidentRead(file, reader: reader, at: offset, bytes: done, hits: hits)
        }
        return done
    }

    /// Sequential reads: once a read passes the middle of its window, the next window is cut (and its
    /// chunks offered) in the background, so that the reader finds it resident.
    func readAheadChunks(_ file: SharedFile, map: ChunkMap, after position: UInt64) {
        let windowBytes = UInt64(map.windowBytes)
        let next = position / windowBytes + 1
        guard position % windowBytes >= windowBytes / 2, next * windowBytes < file.size,
            file.readaheadEnd.load(ordering: .relaxed) < next,
            file.readaheadEnd.exchange(next, ordering: .relaxed) < next, map.window(Int(next)) == nil
        else { return }
        self.readahead.start {
            // A failing window is left for a reader to fail on; readahead only warms the cache.
            _ = try? await self.cutWindow(file, map: map, number: Int(next))
        }
    }
}

extension SharedPageCache {
    /// Bytes of `file` its resident chunks cover, over the windows cut (0 for a file shared by file).
    /// Scrape-time accounting: one store lookup per chunk of the map.
    func residentChunkBytes(of file: SharedFile) -> Int {
        guard let map = file.chunkMap else { return 0 }
        var bytes = 0
        for window in map.cutWindows {
            for index in window.references.indices {
                let key = window.key(index, domain: file.counters.chunkScope, file: file.id)
                if self.chunkStore.shard(for: key).isCurrent(key, stamp: window.stamps[index]) {
                    bytes += Int(window.references[index].length)
                }
            }
        }
        return bytes
    }
}

extension SharedPageCache {
    /// `files` are dropped (`force`: their content too, shared or not): each chunk their maps hold goes
    /// with its last holder, or at once with `force`. Returns the bytes dropped.
    func releaseChunks(of files: [SharedFile], force: Bool) -> Int {
        var dropped = 0
        for file in files {
            guard let map = file.chunkMap else { continue }
            for window in map.cutWindows {
                for index in window.references.indices where window.stamps[index] != 0 {
                    let key = window.key(index, domain: file.counters.chunkScope, file: file.id)
                    dropped += self.chunkStore.shard(for: key).release(key, stamp: window.stamps[index], force: force)
                    window.stamps[index] = 0
                }
            }
        }
        return dropped
    }
}

/// A chunk's bytes do not have the identity its map recorded: the image changed under the map, or a map
/// read back from disk is stale.
struct ChunkMismatch: Error {
    var offset: UInt64
    var length: Int

    /// The error a reader gets when the map was cut in this process.
    var failure: PageCacheError {
        PageCacheError(
            .fillFailed, "chunk at \(self.offset) of \(self.length) bytes no longer has the identity its map recorded")
    }
}
