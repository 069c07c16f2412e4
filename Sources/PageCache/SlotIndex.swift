/// A key a ``SlotIndex`` can find slots by: equality and a well-mixed hash of its own (cheaper than
/// `Hasher`, and the same in every process).
protocol SlotIndexKey: Equatable {
    var mixedHash: UInt64 { get }
}

extension PageKey: SlotIndexKey {
    var mixedHash: UInt64 {
        let mixed = (self.file &* 0x9E37_79B9_7F4A_7C15) ^ (self.page &* 0xC2B2_AE3D_27D4_EB4F)
        return mixed ^ (mixed >> 31)
    }
}

/// The index of a store's slots: key → slot, as open addressing with linear probing over slot numbers
/// only (4 bytes a bucket: a slot's key lives in the store's `keys` array). Kept at most half full
/// (``reserve(slots:keys:)`` doubles it before that); deletion shifts followers back instead of leaving
/// tombstones. About 8 bytes a slot, where a `Dictionary<PageKey, Int32>` took about 40.
struct SlotIndex<Key: SlotIndexKey> {
    private var buckets: [Int32]
    private var mask: Int
    private(set) var count = 0

    init(slots: Int) {
        var size = 2
        while size < slots * 2 { size *= 2 }
        self.buckets = .init(repeating: -1, count: size)
        self.mask = size - 1
    }

    private func home(_ key: Key) -> Int { Int(truncatingIfNeeded: key.mixedHash) & self.mask }

    private func bucket(of key: Key, keys: [Key]) -> Int? {
        var position = self.home(key)
        while true {
            let slot = self.buckets[position]
            if slot < 0 { return nil }
            if keys[Int(slot)] == key { return position }
            position = (position + 1) & self.mask
        }
    }

    /// The slot holding `key`; `keys` maps slots to their keys.
    func slot(for key: Key, keys: [Key]) -> Int32? {
        self.bucket(of: key, keys: keys).map { self.buckets[$0] }
    }

    /// Adds `slot` for `key`, which must not be present; the index must have room (``reserve(slots:keys:)``).
    mutating func insert(_ slot: Int32, for key: Key) {
        var position = self.home(key)
        while self.buckets[position] >= 0 { position = (position + 1) & self.mask }
        self.buckets[position] = slot
        self.count += 1
    }

    /// Makes room for `slots` entries (the table doubled and rebuilt while it would be more than half full).
    mutating func reserve(slots: Int, keys: [Key]) {
        guard slots * 2 > self.buckets.count else { return }
        let present = self.slots
        var size = self.buckets.count
        while size < slots * 2 { size *= 2 }
        self.buckets = .init(repeating: -1, count: size)
        self.mask = size - 1
        self.count = 0
        for slot in present { self.insert(slot, for: keys[Int(slot)]) }
    }

    /// Removes `key` (whose slot's entry in `keys` must still be `key`).
    mutating func remove(_ key: Key, keys: [Key]) {
        guard var hole = self.bucket(of: key, keys: keys) else { return }
        var next = (hole + 1) & self.mask
        while self.buckets[next] >= 0 {
            // An entry may move back into the hole unless its home lies cyclically after the hole.
            let home = self.home(keys[Int(self.buckets[next])])
            if (next - home) & self.mask >= (next - hole) & self.mask {
                self.buckets[hole] = self.buckets[next]
                hole = next
            }
            next = (next + 1) & self.mask
        }
        self.buckets[hole] = -1
        self.count -= 1
    }

    /// The slots present.
    var slots: [Int32] { self.buckets.filter { $0 >= 0 } }

    /// Bytes of the table.
    var bytes: Int { self.buckets.count * MemoryLayout<Int32>.stride }
}
