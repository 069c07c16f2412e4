import EROFS
import Synchronization

/// Reads through the page store (``PageStore``; a cache whose domains all share whole files): a range is
/// read page by page, a hit copied under its shard's lock, a miss filled once (single flight) from the first
/// sharer that can supply it.
extension SharedPageCache {
    /// Reads `buffer.count` bytes from `offset` (fewer at the end); returns the count.
    func readPages(
        _ file: SharedFile, reader: ImageCounters?, at offset: UInt64, into buffer: ReadDestination
    ) async throws -> Int {
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
                file, reader: reader, page: page, range: buffer.copied(within..<within + count),
                into: buffer[done..<done + count])
            done += count
        }
        file.counters.add(.logicalReadBytes, total)
        reader?.logicalReadBytes.wrappingAdd(total, ordering: .relaxed)
        return total
    }

    /// Walks the pages from `offset` (up to `maxBytes`, never past the end), handing each page's key, byte
    /// range and the bytes taken so far to `take`, until `take` finds a page not resident; counts what was
    /// taken as hits and one read. Returns the bytes taken.
    func takeResident(
        _ file: SharedFile, reader: ImageCounters, at offset: UInt64, maxBytes: Int,
        counting: ResidentCounting = .always, _ take: (CacheShard, PageKey, Range<Int>, Int) -> Bool
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
            let shard = self.pages.shard(for: key)
            guard take(shard, key, within..<within + count, done) else { break }
            done += count
            hits += 1
        }
        if counting.counts(taken: done, of: total) {
            self.noteResidentRead(file, reader: reader, at: offset, bytes: done, hits: hits)
        }
        return done
    }

    /// Sequential access: keeps the pages up to `readaheadPages` past `position` warm. A new window is
    /// scheduled only when reads come within half a window of the pages already scheduled, so a run of
    /// sequential hits costs one background task per half window, not one per read.
    func readAheadPages(_ file: SharedFile, after position: UInt64) {
        let window = UInt64(self.configuration.readaheadPages)
        let pageSize = UInt64(self.configuration.pageSize)
        let next = (position + pageSize - 1) / pageSize
        let last = min(next + window, (file.size + pageSize - 1) / pageSize)
        let scheduled = file.readaheadEnd.load(ordering: .relaxed)
        guard next + window / 2 >= scheduled, last > scheduled,
            file.readaheadEnd.compareExchange(expected: scheduled, desired: last, ordering: .relaxed).exchanged
        else { return }
        let first = max(next, scheduled)
        self.readahead.start {
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

    fileprivate func copyPage(
        _ file: SharedFile, reader: ImageCounters?, page: UInt64, range: Range<Int>,
        into destination: UnsafeMutableRawBufferPointer
    ) async throws {
        let key = PageKey(file: file.id, page: page)
        let shard = self.pages.shard(for: key)
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
                // page, cache nothing (and for a caller that only wants the page resident, do nothing).
                self.release(reservation, file.counters)
                guard !range.isEmpty else { return }
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

    /// A page counted against a domain's quota before its slot is claimed: with a quota, concurrent fills of
    /// one domain each see the pages the others are filling, so together they cannot go past the quota.
    fileprivate struct Reservation {
        /// The domain would be past its quota with this page: it may only replace one of its own.
        var overQuota: Bool
        /// Whether the page's bytes were added to the domain's resident bytes (only when it has a quota).
        var taken: Bool
    }

    fileprivate func reserve(_ counters: DomainCounters) -> Reservation {
        guard let quota = counters.quota else { return Reservation(overQuota: false, taken: false) }
        let after = counters.residentBytes.wrappingAdd(self.configuration.pageSize, ordering: .relaxed).newValue
        return Reservation(overQuota: after > quota, taken: true)
    }

    /// Gives a reservation back (the page was not published).
    fileprivate func release(_ reservation: Reservation, _ counters: DomainCounters) {
        if reservation.taken { counters.add(.residentBytes, -self.configuration.pageSize) }
    }

    /// A page of `file` left the cache (dropped or evicted).
    func noteDropped(_ file: SharedFile) {
        file.residentPages.wrappingSubtract(1, ordering: .relaxed)
        file.counters.add(.residentBytes, -self.configuration.pageSize)
    }

    /// A page of `file` was evicted to make room for another.
    fileprivate func noteEvicted(_ file: SharedFile) {
        self.noteDropped(file)
        file.counters.add(.evictions, 1)
    }

    fileprivate func noteFilled(_ file: SharedFile, reader: ImageCounters?, reserved: Bool) {
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
            let shard = self.pages.shard(for: key)
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
}
