import NIOCore
import Synchronization

/// A cached page's identity: the shared file and the page index within it.
struct PageKey: Hashable, Sendable {
    var file: UInt64
    var page: UInt64
}

/// One stripe of the page cache: its own lock, slots, page memory and eviction state, so that readers of
/// different stripes never contend.
///
/// Eviction is SIEVE (Zhang et al., "SIEVE is Simpler than LRU", NSDI '24): a hit only sets a `visited`
/// bit under the lock (no list surgery on the read path); new pages enter at the head of a FIFO list; a hand
/// moves from the tail towards the head, clearing `visited` bits and evicting the first unvisited page.
/// Chosen over S3-FIFO for the same scan resistance (a one-pass scan's pages are never revisited, so the
/// hand evicts them while pages hit twice survive) with one queue and one bit per page.
final class CacheShard: Sendable, LoanPinning {
    let pageSize: Int
    let capacity: Int
    private let state: Mutex<State>

    /// Slot bookkeeping in parallel arrays (no per-page allocation), 37 bytes per slot plus 8 of index
    /// (``SlotIndex``): ~1.1 % of a 4 KiB page, ~0.3 % of a 16 KiB one. A slot is resident when `files`
    /// holds its file; a slot being filled is in neither `index` nor the list, so eviction never sees it.
    /// `pins` counts the lent views of a slot (``PageLoan``): a pinned slot is never evicted or refilled, and
    /// one dropped while pinned (detach) is freed by its last unpin. `-1` ends a list.
    struct State: ~Copyable {
        var index: SlotIndex<PageKey>
        var waiters = FillWaiters<PageKey>()
        var keys: [PageKey]
        var files: [SharedFile?]
        var visited: [Bool]
        var pins: [UInt32]
        var previous: [Int32]
        var next: [Int32]
        var head: Int32 = -1
        var tail: Int32 = -1
        var hand: Int32 = -1
        var freeSlots: [Int32] = []
        var usedSlots: Int32 = 0
    }

    private let arena: PageArena

    init(capacity: Int, pageSize: Int) {
        self.capacity = capacity
        self.pageSize = pageSize
        self.arena = PageArena(pages: capacity, pageSize: pageSize)
        self.state = Mutex(
            State(
                index: SlotIndex(slots: capacity), keys: .init(repeating: PageKey(file: 0, page: 0), count: capacity),
                files: .init(repeating: nil, count: capacity), visited: .init(repeating: false, count: capacity),
                pins: .init(repeating: 0, count: capacity), previous: .init(repeating: -1, count: capacity),
                next: .init(repeating: -1, count: capacity)))
    }

    /// What a lookup found.
    enum Lookup {
        /// Copied into the destination.
        case hit
        /// Another reader is filling the page: wait, then look again.
        case busy
        /// The caller must fill `slot` (its memory is ``page(_:)``) and then ``publish`` or ``abandon`` it.
        case fill(slot: Int32, evicted: SharedFile?)
        /// The reader's domain is at its quota and has no page here to replace, or every slot is being filled
        /// or lent out: read without caching.
        case bypass
    }

    /// Copies page `key` bytes `range` into `destination` on a hit; otherwise claims the fill. A domain at its
    /// quota (`overQuota`) may only replace one of its own pages, never take a free slot or another
    /// domain's page.
    func lookup(
        _ key: PageKey, range: Range<Int>, into destination: UnsafeMutableRawBufferPointer,
        owner: DomainCounters, overQuota: Bool
    ) -> Lookup {
        self.state.withLock { state -> Lookup in
            if let slot = state.index.slot(for: key, keys: state.keys) {
                state.visited.markVisited(Int(slot))
                destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: self.arena.page(slot)[range]))
                return .hit
            }
            if state.waiters.isFilling(key) { return .busy }
            if overQuota {
                guard let victim = Self.ownVictim(&state, owner: owner) else { return .bypass }
                let file = state.files[Int(victim)]
                self.release(&state, victim)
                _ = state.freeSlots.popLast()
                state.waiters.begin(key)
                return .fill(slot: victim, evicted: file)
            }
            // Every slot being filled or lent out: serve this read without caching it.
            guard let (slot, evicted) = self.claimSlot(&state) else { return .bypass }
            state.waiters.begin(key)
            return .fill(slot: slot, evicted: evicted)
        }
    }

    /// Claims the fill of page `key` if it is neither resident nor being filled and a slot can be had without
    /// going over quota (a page filled speculatively never evicts at quota); nil otherwise. Unlike
    /// ``lookup(_:range:into:owner:overQuota:)`` it leaves a resident page's visited bit alone.
    func claimIfAbsent(_ key: PageKey, overQuota: Bool) -> (slot: Int32, evicted: SharedFile?)? {
        guard !overQuota else { return nil }
        return self.state.withLock { state -> (slot: Int32, evicted: SharedFile?)? in
            guard state.index.slot(for: key, keys: state.keys) == nil, !state.waiters.isFilling(key),
                let (slot, evicted) = self.claimSlot(&state)
            else { return nil }
            state.waiters.begin(key)
            return (slot, evicted)
        }
    }

    /// Copies page `key` bytes `range` into `destination` if the page is resident; never claims a fill.
    func copyIfResident(_ key: PageKey, range: Range<Int>, into destination: UnsafeMutableRawBufferPointer) -> Bool {
        self.state.withLock { state -> Bool in
            guard let slot = state.index.slot(for: key, keys: state.keys) else { return false }
            state.visited.markVisited(Int(slot))
            destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: self.arena.page(slot)[range]))
            return true
        }
    }

    /// Lends bytes `range` of page `key` if it is resident: a view of the page's memory, with the slot pinned
    /// until ``unpin(_:)``. Never claims a fill.
    func borrowIfResident(_ key: PageKey, range: Range<Int>) -> (bytes: ByteBuffer, slot: Int32)? {
        self.state.withLock { state -> (bytes: ByteBuffer, slot: Int32)? in
            guard let slot = state.index.slot(for: key, keys: state.keys) else { return nil }
            state.visited.markVisited(Int(slot))
            state.pins[Int(slot)] += 1
            return (self.arena.view(of: slot, range: range), slot)
        }
    }

    /// Ends one loan of `slot`; the last unpin of a slot dropped meanwhile frees it.
    func unpin(_ slot: Int32) {
        self.state.withLock { state in
            let index = Int(slot)
            state.pins[index] -= 1
            if state.pins[index] == 0 && state.files[index] == nil { state.freeSlots.append(slot) }
        }
    }

    /// Waits until a fill of `key` in progress ends (immediately if none is).
    func waitForFill(_ key: PageKey) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            if !self.state.withLock({ $0.waiters.enqueue(continuation, behind: key) }) { continuation.resume() }
        }
    }

    /// Publishes a filled slot and copies `range` of it to `destination`; wakes the waiters.
    func publish(
        _ key: PageKey, slot: Int32, file: SharedFile, range: Range<Int>,
        into destination: UnsafeMutableRawBufferPointer
    ) {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            let index = Int(slot)
            state.keys[index] = key
            state.files[index] = file
            state.visited[index] = false
            state.index.insert(slot, for: key)
            Self.pushHead(&state, slot)
            destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: self.arena.page(slot)[range]))
            return state.waiters.end(key)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Gives back a slot whose fill failed; wakes the waiters (they retry, and fail or fill themselves).
    func abandon(_ key: PageKey, slot: Int32) {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.freeSlots.append(slot)
            return state.waiters.end(key)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Drops every page of the given files (detached content); returns the files whose pages went, one entry
    /// per page, for accounting.
    func purge(files ids: Set<UInt64>) -> [SharedFile] {
        self.state.withLock { state -> [SharedFile] in
            var dropped: [SharedFile] = []
            for slot in state.index.slots where ids.contains(state.keys[Int(slot)].file) {
                if let file = state.files[Int(slot)] { dropped.append(file) }
                self.release(&state, slot)
            }
            return dropped
        }
    }

    /// Pages resident in this shard.
    var residentPages: Int { self.state.withLock { $0.index.count } }

    /// Bytes of bookkeeping held for this shard's slots (the arrays at their capacities and the index).
    var metadataBytes: Int {
        self.state.withLock { state in
            let perSlot =
                MemoryLayout<PageKey>.stride + MemoryLayout<SharedFile?>.stride + MemoryLayout<Bool>.stride
                + MemoryLayout<UInt32>.stride + 2 * MemoryLayout<Int32>.stride
            return state.keys.capacity * perSlot + state.freeSlots.capacity * MemoryLayout<Int32>.stride
                + state.index.bytes
        }
    }

    // MARK: Slots

    /// The memory of `slot`: written only by the filler that reserved it, read only under the lock.
    func page(_ slot: Int32) -> UnsafeMutableRawBufferPointer { self.arena.page(slot) }

    /// A slot for a new page: a free one, a never-used one (allocating a slab when needed), or the one SIEVE
    /// evicts. Nil when every slot is being filled.
    private func claimSlot(_ state: inout State) -> (Int32, SharedFile?)? {
        if let slot = state.freeSlots.popLast() {
            return (slot, nil)
        }
        if Int(state.usedSlots) < self.capacity {
            let slot = state.usedSlots
            state.usedSlots += 1
            return (slot, nil)
        }
        guard let victim = Self.sieveVictim(&state) else { return nil }
        let file = state.files[Int(victim)]
        self.release(&state, victim)
        _ = state.freeSlots.popLast()  // release() freed it; claim it directly
        return (victim, file)
    }

    /// Removes a resident page and frees its slot, or, while the page is lent out, leaves the slot to its
    /// last ``unpin(_:)``.
    private func release(_ state: inout State, _ slot: Int32) {
        let index = Int(slot)
        if state.files[index] != nil { state.index.remove(state.keys[index], keys: state.keys) }
        if state.hand == slot { state.hand = state.previous[index] }
        Self.unlink(&state, slot)
        state.files[index] = nil
        state.visited[index] = false
        if state.pins[index] == 0 { state.freeSlots.append(slot) }
    }

    /// SIEVE: from the hand (or the tail) towards the head, clear visited bits until an unvisited page that
    /// is not lent out.
    private static func sieveVictim(_ state: inout State) -> Int32? {
        var candidate = state.hand >= 0 ? state.hand : state.tail
        var steps = 0
        let limit = 2 * state.keys.count + 2
        while candidate >= 0 && steps < limit {
            let index = Int(candidate)
            if state.pins[index] > 0 {
                candidate = state.previous[index] >= 0 ? state.previous[index] : state.tail
            } else if state.visited[index] {
                state.visited[index] = false
                candidate = state.previous[index] >= 0 ? state.previous[index] : state.tail
            } else {
                state.hand = state.previous[index]
                return candidate
            }
            steps += 1
        }
        return nil
    }

    /// SIEVE restricted to `owner`'s pages that are not lent out, from the tail towards the head, without
    /// moving the shared hand.
    private static func ownVictim(_ state: inout State, owner: DomainCounters) -> Int32? {
        for _ in 0..<2 {
            var candidate = state.tail
            while candidate >= 0 {
                let index = Int(candidate)
                if let file = state.files[index], file.counters === owner, state.pins[index] == 0 {
                    if !state.visited[index] { return candidate }
                    state.visited[index] = false
                }
                candidate = state.previous[index]
            }
        }
        return nil
    }

    private static func pushHead(_ state: inout State, _ slot: Int32) {
        let index = Int(slot)
        state.previous[index] = -1
        state.next[index] = state.head
        if state.head >= 0 { state.previous[Int(state.head)] = slot }
        state.head = slot
        if state.tail < 0 { state.tail = slot }
    }

    private static func unlink(_ state: inout State, _ slot: Int32) {
        let index = Int(slot)
        let previous = state.previous[index]
        let next = state.next[index]
        if previous >= 0 { state.next[Int(previous)] = next } else if state.head == slot { state.head = next }
        if next >= 0 { state.previous[Int(next)] = previous } else if state.tail == slot { state.tail = previous }
        state.previous[index] = -1
        state.next[index] = -1
    }
}

/// The page memory of one shard, allocated at start as ByteBuffer slabs of up to 1 GiB (the OS commits the
/// memory as pages are first written): no per-page malloc, slot addresses never move, and a resident page can
/// be lent as a `ByteBuffer` slice of its slab (``view(of:range:)``) that NIO writes without copying.
///
/// Pages are written through the slab's base address, escaped as NIO documents for
/// `withVeryUnsafeBytesWithStorageManagement`: the storage is retained for the arena's lifetime (and each
/// lent slice retains it too). `@unchecked Sendable`: the pointers are immutable; each slot is written only
/// by the one filler that reserved it, while no view of it is lent out, and read only after it was published.
final class PageArena: @unchecked Sendable {
    let pageSize: Int
    private let pagesPerSlab: Int
    private let slabs: [ByteBuffer]
    private let bases: [UnsafeMutableRawPointer]
    private let storages: [Unmanaged<AnyObject>]

    init(pages: Int, pageSize: Int) {
        self.pageSize = pageSize
        self.pagesPerSlab = min(pages, (1 << 30) / pageSize)
        var slabs: [ByteBuffer] = []
        var bases: [UnsafeMutableRawPointer] = []
        var storages: [Unmanaged<AnyObject>] = []
        var remaining = pages
        while remaining > 0 {
            let count = min(remaining, self.pagesPerSlab)
            var slab = ByteBufferAllocator().buffer(capacity: count * pageSize)
            slab.moveWriterIndex(to: count * pageSize)
            let (base, storage) = slab.withVeryUnsafeBytesWithStorageManagement { bytes, storage in
                (UnsafeMutableRawPointer(mutating: bytes.baseAddress!), storage.retain())
            }
            slabs.append(slab)
            bases.append(base)
            storages.append(storage)
            remaining -= count
        }
        self.slabs = slabs
        self.bases = bases
        self.storages = storages
    }

    deinit { for storage in self.storages { storage.release() } }

    /// The memory of `slot`, for its filler.
    func page(_ slot: Int32) -> UnsafeMutableRawBufferPointer {
        let (slab, within) = Int(slot).quotientAndRemainder(dividingBy: self.pagesPerSlab)
        return UnsafeMutableRawBufferPointer(start: self.bases[slab] + within * self.pageSize, count: self.pageSize)
    }

    /// Bytes `range` of `slot` as a slice of its slab: no copy, the slab's storage shared.
    func view(of slot: Int32, range: Range<Int>) -> ByteBuffer {
        let (slab, within) = Int(slot).quotientAndRemainder(dividingBy: self.pagesPerSlab)
        return self.slabs[slab].getSlice(at: within * self.pageSize + range.lowerBound, length: range.count)!
    }
}
