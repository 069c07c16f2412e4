import Foundation
import NIOCore
import Synchronization

/// One stripe of the chunk store: variable-size chunks in a fixed part of the budget, with its own lock.
///
/// **Memory** is a log of fixed-size segments (Segcache, Yang et al., NSDI '21): a chunk is appended to the
/// open segment and never straddles two, so the only waste is the tail of a segment a chunk did not fit in
/// and the holes of chunks dropped since the segment was last compacted — no size classes, no per-chunk
/// malloc, a hard budget. **Eviction** is SIEVE's rule at segment granularity: when no free segment is
/// left, the oldest sealed segment is compacted in place — chunks read since they came (`visited`) slide
/// down and stay, with the bit cleared; the others go — and becomes the open segment, unless its survivors
/// leave too little room, in which case it goes back to the end of the line with its bits cleared (a scan's
/// chunks are never revisited, so they are the ones that go).
///
/// A segment with a chunk being filled or lent out (``ChunkShard/unpin(_:)``) is never compacted, so
/// chunk bytes never move under a reader; a chunk dropped while lent keeps its bytes until the last loan
/// ends.
///
/// **Exactness**: every fill of a chunk gets a new *stamp* (never reused). A chunk map's reference records
/// the stamp of the resident chunk its own bytes were found equal to — because it filled it, or because a
/// byte comparison said so (``offer(_:bytes:owner:)``, ``join(_:bytes:range:into:)``) — and is served a
/// chunk only while that stamp is current. So bytes another file placed under the same identity (after an
/// eviction, a hash collision, a crafted image) are never served unchecked, whatever the hash does.
/// `holders` counts the references stamped with the current fill: the chunk's sharers.
final class ChunkShard: Sendable, LoanPinning {
    let segmentSize: Int
    let segmentCount: Int
    private let arena: PageArena
    private let state: Mutex<State>

    enum SlotState: UInt8 { case free, filling, resident, dead }

    /// Parallel arrays per chunk slot (grown on demand, slots reused) and per segment.
    struct State: ~Copyable {
        var index = SlotIndex<ChunkKey>(slots: 64)
        var waiters = FillWaiters<ChunkKey>()
        var keys: [ChunkKey] = []
        var offsets: [Int32] = []
        var segments: [Int32] = []
        var states: [SlotState] = []
        var visited: [Bool] = []
        var pins: [UInt32] = []
        var owners: [DomainCounters?] = []
        var stamps: [UInt64] = []
        var holders: [UInt32] = []
        var freeSlots: [Int32] = []
        var nextStamp: UInt64 = 1
        /// Per segment: its chunk slots in address order, the write cursor, and pins (loans and fills).
        var members: [[Int32]]
        var used: [Int32]
        var segmentPins: [Int32]
        /// Sealed segments, oldest first; free ones; the one being appended to (-1: none yet).
        var sealed: [Int32] = []
        var freeSegments: [Int32]
        var open: Int32 = -1
        var residentBytes = 0
        var residentChunks = 0
    }

    init(segments: Int, segmentSize: Int) {
        self.segmentSize = segmentSize
        self.segmentCount = segments
        self.arena = PageArena(pages: segments, pageSize: segmentSize)
        self.state = Mutex(
            State(
                members: .init(repeating: [], count: segments), used: .init(repeating: 0, count: segments),
                segmentPins: .init(repeating: 0, count: segments), freeSegments: (0..<Int32(segments)).reversed()))
    }

    /// What a lookup found.
    enum Lookup {
        /// Copied into the destination.
        case hit
        /// Resident, but not from a fill the reader's reference was checked against: read the reference's own
        /// bytes and ``join(_:bytes:range:into:)``.
        case unverified
        /// Another reader is filling the chunk: wait, then look again.
        case busy
        /// The caller fills `memory` (the chunk's place in the log), then ``publish`` or ``abandon`` it.
        case fill(slot: Int32, memory: UnsafeMutableRawBufferPointer)
        /// No room (every segment pinned, or the domain at its quota with nothing of its own to replace):
        /// read without caching.
        case bypass
    }

    /// Copies bytes `range` of chunk `key` into `destination` when its fill is `stamp`; otherwise claims its
    /// fill, counting the chunk against `owner` (whose quota it must fit).
    func lookup(
        _ key: ChunkKey, stamp: UInt64, range: Range<Int>, into destination: UnsafeMutableRawBufferPointer,
        owner: DomainCounters
    ) -> Lookup {
        self.state.withLock { state -> Lookup in
            if let slot = state.index.slot(for: key, keys: state.keys) {
                guard state.stamps[Int(slot)] == stamp else { return .unverified }
                state.visited.markVisited(Int(slot))
                destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: self.bytes(&state, slot)[range]))
                return .hit
            }
            if state.waiters.isFilling(key) { return .busy }
            guard let slot = self.allocate(&state, key, owner: owner) else { return .bypass }
            state.states[Int(slot)] = .filling
            state.segmentPins[Int(state.segments[Int(slot)])] += 1
            state.waiters.begin(key)
            return .fill(slot: slot, memory: self.bytes(&state, slot))
        }
    }

    /// Publishes a filled chunk, its filler's reference its first holder, and copies `range` of it to
    /// `destination`; returns the fill's stamp.
    func publish(
        _ key: ChunkKey, slot: Int32, range: Range<Int>, into destination: UnsafeMutableRawBufferPointer
    ) -> UInt64 {
        let (stamp, waiters) = self.state.withLock { state -> (UInt64, [CheckedContinuation<Void, Never>]) in
            let index = Int(slot)
            state.segmentPins[Int(state.segments[index])] -= 1
            let stamp = self.makeResident(&state, slot)
            destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: self.bytes(&state, slot)[range]))
            return (stamp, state.waiters.end(key))
        }
        for waiter in waiters { waiter.resume() }
        return stamp
    }

    /// Gives back a chunk whose fill failed; wakes the waiters (they retry, and fail or fill themselves).
    func abandon(_ key: ChunkKey, slot: Int32) {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            let index = Int(slot)
            state.segmentPins[Int(state.segments[index])] -= 1
            state.states[index] = .dead
            state.owners[index]?.add(.residentBytes, -Int(state.keys[index].length))
            state.owners[index] = nil
            return state.waiters.end(key)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits until a fill of `key` in progress ends (immediately if none is).
    func waitForFill(_ key: ChunkKey) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            if !self.state.withLock({ $0.waiters.enqueue(continuation, behind: key) }) { continuation.resume() }
        }
    }

    /// What offering a chunk's bytes did.
    enum Offer: Equatable {
        /// An equal chunk was resident: the reference joined it (its stamp), the offered copy was dropped.
        case joined(stamp: UInt64)
        /// The chunk was not resident: the offered bytes were stored, under a new stamp.
        case stored(stamp: UInt64)
        /// A resident chunk of the same key holds other bytes: the offered chunk must be kept apart.
        case differs
        /// Being filled by another reader, or no room: nothing done.
        case skipped
    }

    /// Offers `bytes`, chunk `key` read anyway (a window being cut, an extent decoded): joins an equal
    /// resident chunk after comparing the bytes, or stores them (unvisited, so an unread chunk goes first).
    func offer(_ key: ChunkKey, bytes: UnsafeRawBufferPointer, owner: DomainCounters) -> Offer {
        self.state.withLock { state -> Offer in
            if let slot = state.index.slot(for: key, keys: state.keys) {
                guard Self.equal(self.bytes(&state, slot), bytes) else { return .differs }
                state.holders[Int(slot)] += 1
                return .joined(stamp: state.stamps[Int(slot)])
            }
            guard !state.waiters.isFilling(key), let slot = self.allocate(&state, key, owner: owner) else {
                return .skipped
            }
            self.bytes(&state, slot).copyMemory(from: bytes)
            return .stored(stamp: self.makeResident(&state, slot))
        }
    }

    /// What a join did.
    enum Join {
        /// The bytes were equal: the reference holds the chunk's fill `stamp` now; `range` was copied.
        case joined(stamp: UInt64)
        case differs
        /// The chunk is no longer resident: look again.
        case gone
    }

    /// Joins a reference to resident chunk `key` if the reference's own `bytes` equal the chunk's, and
    /// copies `range`.
    func join(
        _ key: ChunkKey, bytes: UnsafeRawBufferPointer, range: Range<Int>,
        into destination: UnsafeMutableRawBufferPointer
    ) -> Join {
        self.state.withLock { state -> Join in
            guard let slot = state.index.slot(for: key, keys: state.keys) else { return .gone }
            let resident = self.bytes(&state, slot)
            guard Self.equal(resident, bytes) else { return .differs }
            state.holders[Int(slot)] += 1
            state.visited.markVisited(Int(slot))
            destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: resident[range]))
            return .joined(stamp: state.stamps[Int(slot)])
        }
    }

    /// Copies `range` of chunk `key` if it is resident from fill `stamp`; never claims a fill.
    func copyIfReadable(
        _ key: ChunkKey, stamp: UInt64, range: Range<Int>, into destination: UnsafeMutableRawBufferPointer
    ) -> Bool {
        self.state.withLock { state -> Bool in
            guard let slot = state.index.slot(for: key, keys: state.keys), state.stamps[Int(slot)] == stamp
            else { return false }
            state.visited.markVisited(Int(slot))
            destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: self.bytes(&state, slot)[range]))
            return true
        }
    }

    /// Lends `range` of chunk `key` if it is resident from fill `stamp`: a view of the log's memory, the
    /// chunk (and so its segment) pinned until ``unpin(_:)``.
    func borrowIfReadable(_ key: ChunkKey, stamp: UInt64, range: Range<Int>) -> (bytes: ByteBuffer, slot: Int32)? {
        self.state.withLock { state -> (bytes: ByteBuffer, slot: Int32)? in
            guard let slot = state.index.slot(for: key, keys: state.keys), state.stamps[Int(slot)] == stamp
            else { return nil }
            let index = Int(slot)
            state.visited.markVisited(index)
            state.pins[index] += 1
            state.segmentPins[Int(state.segments[index])] += 1
            let start = Int(state.offsets[index]) + range.lowerBound
            return (self.arena.view(of: state.segments[index], range: start..<start + range.count), slot)
        }
    }

    /// Ends one loan of `slot`.
    func unpin(_ slot: Int32) {
        self.state.withLock { state in
            let index = Int(slot)
            state.pins[index] -= 1
            state.segmentPins[Int(state.segments[index])] -= 1
        }
    }

    /// Whether chunk `key` is resident from fill `stamp`.
    func isCurrent(_ key: ChunkKey, stamp: UInt64) -> Bool {
        self.state.withLock { state in
            state.index.slot(for: key, keys: state.keys).map { state.stamps[Int($0)] == stamp } ?? false
        }
    }

    /// A reference of fill `stamp` of chunk `key` goes (its file is dropped): the chunk goes with its last
    /// holder, or at once with `force`. Returns the bytes dropped.
    func release(_ key: ChunkKey, stamp: UInt64, force: Bool) -> Int {
        self.state.withLock { state -> Int in
            guard let slot = state.index.slot(for: key, keys: state.keys), state.stamps[Int(slot)] == stamp else {
                return 0
            }
            let index = Int(slot)
            state.holders[index] -= 1
            guard force || state.holders[index] == 0 else { return 0 }
            self.drop(&state, slot, evicted: false)
            return Int(key.length)
        }
    }

    /// Bytes of resident chunks, and their count.
    var resident: (bytes: Int, chunks: Int) { self.state.withLock { ($0.residentBytes, $0.residentChunks) } }

    /// Log bytes that hold no resident chunk: the tails of sealed segments a chunk did not fit in, and the
    /// holes of chunks dropped (or being filled) since their segment was last compacted. The open segment's
    /// free end is not counted: it is free.
    var wasteBytes: Int {
        self.state.withLock { state in
            let sealed = state.sealed.count * self.segmentSize
            let open = state.open >= 0 ? Int(state.used[Int(state.open)]) : 0
            return sealed + open - state.residentBytes
        }
    }

    /// Per owning domain, Σ over resident chunks of (holders − 1) × length: the bytes chunk sharing saved.
    var savedBytesByOwner: [ObjectIdentifier: Int] {
        self.state.withLock { state in
            var saved: [ObjectIdentifier: Int] = [:]
            for slot in state.index.slots {
                let index = Int(slot)
                guard state.holders[index] > 1, let owner = state.owners[index] else { continue }
                saved[ObjectIdentifier(owner), default: 0] +=
                    Int(state.holders[index] - 1) * Int(state.keys[index].length)
            }
            return saved
        }
    }

    /// Bytes of bookkeeping: the slot arrays at their capacities, the index and the segment lists.
    var metadataBytes: Int {
        self.state.withLock { state in
            let perSlot =
                MemoryLayout<ChunkKey>.stride + 2 * MemoryLayout<Int32>.stride + MemoryLayout<SlotState>.stride
                + MemoryLayout<Bool>.stride + MemoryLayout<UInt32>.stride + MemoryLayout<DomainCounters?>.stride
                + MemoryLayout<UInt64>.stride + MemoryLayout<UInt32>.stride
            let members = state.members.reduce(0) { $0 + $1.capacity } * MemoryLayout<Int32>.stride
            return state.keys.capacity * perSlot + state.index.bytes + members + self.segmentCount * 3 * 4
        }
    }

    /// Whether two chunks hold the same bytes (the comparison that guards every join).
    private static func equal(_ resident: UnsafeMutableRawBufferPointer, _ offered: UnsafeRawBufferPointer) -> Bool {
        resident.count == offered.count
            && (resident.count == 0 || memcmp(resident.baseAddress!, offered.baseAddress!, resident.count) == 0)
    }

    // MARK: The log

    private func bytes(_ state: inout State, _ slot: Int32) -> UnsafeMutableRawBufferPointer {
        let index = Int(slot)
        let start = Int(state.offsets[index])
        return UnsafeMutableRawBufferPointer(
            rebasing: self.arena.page(state.segments[index])[start..<start + Int(state.keys[index].length)])
    }

    /// Makes `slot` resident under a new stamp (returned), with one holder.
    private func makeResident(_ state: inout State, _ slot: Int32) -> UInt64 {
        let index = Int(slot)
        state.states[index] = .resident
        state.visited[index] = false
        state.stamps[index] = state.nextStamp
        state.nextStamp += 1
        state.holders[index] = 1
        state.index.reserve(slots: state.index.count + 1, keys: state.keys)
        state.index.insert(slot, for: state.keys[index])
        state.residentBytes += Int(state.keys[index].length)
        state.residentChunks += 1
        return state.stamps[index]
    }

    /// A slot and a place in the log for chunk `key`, counted against `owner`: nil when the domain cannot
    /// take it (at quota, with nothing of its own left to drop) or no segment can be had.
    private func allocate(_ state: inout State, _ key: ChunkKey, owner: DomainCounters) -> Int32? {
        let length = Int(key.length)
        guard self.charge(&state, owner, length) else { return nil }
        if state.open < 0 || Int(state.used[Int(state.open)]) + length > self.segmentSize {
            guard let segment = self.nextSegment(&state, room: length) else {
                owner.add(.residentBytes, -length)
                return nil
            }
            state.open = segment
        }
        let slot: Int32
        if let free = state.freeSlots.popLast() {
            slot = free
        } else {
            slot = Int32(state.keys.count)
            state.keys.append(.empty)
            state.offsets.append(0)
            state.segments.append(0)
            state.states.append(.free)
            state.visited.append(false)
            state.pins.append(0)
            state.owners.append(nil)
            state.stamps.append(0)
            state.holders.append(0)
        }
        let index = Int(slot)
        let segment = Int(state.open)
        state.keys[index] = key
        state.offsets[index] = state.used[segment]
        state.segments[index] = state.open
        state.owners[index] = owner
        state.used[segment] += Int32(length)
        state.members[segment].append(slot)
        return slot
    }

    /// Counts `length` bytes against `owner`; at its quota, first drops an unread chunk of its own (in this
    /// shard) to make room, as a domain at quota replaces its own content and never another's.
    private func charge(_ state: inout State, _ owner: DomainCounters, _ length: Int) -> Bool {
        guard let quota = owner.quota else {
            owner.add(.residentBytes, length)
            return true
        }
        while true {
            if owner.residentBytes.wrappingAdd(length, ordering: .relaxed).newValue <= quota { return true }
            owner.add(.residentBytes, -length)
            guard let victim = Self.ownVictim(&state, owner) else { return false }
            self.drop(&state, victim, evicted: true)
        }
    }

    /// An unread, unpinned resident chunk of `owner`, oldest segment first (clearing the read bits of its
    /// chunks on a first pass, as the eviction hand would).
    private static func ownVictim(_ state: inout State, _ owner: DomainCounters) -> Int32? {
        let order = state.sealed + (state.open >= 0 ? [state.open] : [])
        for _ in 0..<2 {
            for segment in order {
                for slot in state.members[Int(segment)] {
                    let index = Int(slot)
                    guard state.states[index] == .resident, state.owners[index] === owner, state.pins[index] == 0
                    else { continue }
                    if !state.visited[index] { return slot }
                    state.visited[index] = false
                }
            }
        }
        return nil
    }

    /// Seals the open segment and finds the next: a free one, or the oldest sealed one that compaction
    /// leaves with `room` (and at least an eighth of a segment) free. Nil when every segment is pinned or hot.
    private func nextSegment(_ state: inout State, room: Int) -> Int32? {
        if state.open >= 0 {
            state.sealed.append(state.open)
            state.open = -1
        }
        if let free = state.freeSegments.popLast() { return free }
        // Each sealed segment is looked at at most twice: once to clear its bits, once to evict.
        for _ in 0..<(2 * state.sealed.count) {
            let segment = state.sealed.removeFirst()
            if state.segmentPins[Int(segment)] == 0 {
                self.compact(&state, segment)
                if self.segmentSize - Int(state.used[Int(segment)]) >= max(room, self.segmentSize / 8) {
                    return segment
                }
            }
            state.sealed.append(segment)
        }
        return nil
    }

    /// Evicts the unread chunks of `segment` (which nothing pins) and slides the read ones to its start,
    /// clearing their bits; frees the slots of chunks dropped earlier.
    private func compact(_ state: inout State, _ segment: Int32) {
        let base = self.arena.page(segment).baseAddress!
        var cursor: Int32 = 0
        var survivors: [Int32] = []
        for slot in state.members[Int(segment)] {
            let index = Int(slot)
            if state.states[index] == .resident && state.visited[index] {
                state.visited[index] = false
                let length = Int(state.keys[index].length)
                if state.offsets[index] != cursor {
                    // Moving down within one segment: regions may overlap (memmove).
                    (base + Int(cursor)).copyMemory(from: base + Int(state.offsets[index]), byteCount: length)
                    state.offsets[index] = cursor
                }
                cursor += Int32(length)
                survivors.append(slot)
                continue
            }
            if state.states[index] == .resident { self.drop(&state, slot, evicted: true) }
            state.states[index] = .free
            state.freeSlots.append(slot)
        }
        state.members[Int(segment)] = survivors
        state.used[Int(segment)] = cursor
    }

    /// Removes resident chunk `slot` from the index and the accounting; its bytes stay until the segment is
    /// compacted (or, if lent, until then and the last loan's end).
    private func drop(_ state: inout State, _ slot: Int32, evicted: Bool) {
        let index = Int(slot)
        let length = Int(state.keys[index].length)
        state.index.remove(state.keys[index], keys: state.keys)
        state.states[index] = .dead
        state.residentBytes -= length
        state.residentChunks -= 1
        if let owner = state.owners[index] {
            owner.add(.residentBytes, -length)
            if evicted { owner.add(.evictions, 1) }
        }
        state.owners[index] = nil
    }
}
