/// The page index of one cache shard: key → slot, as open addressing with linear probing over slot numbers
/// only (4 bytes a bucket: a slot's key lives in the shard's `keys` array). Sized at twice the shard's
/// slots, so it is at most half full and never grows; deletion shifts followers back instead of leaving
/// tombstones. About 8 bytes a page, where a `Dictionary<PageKey, Int32>` took about 40.
struct SlotIndex {
    private var buckets: [Int32]
    private let mask: Int
    private(set) var count = 0

    init(slots: Int) {
        var size = 2
        while size < slots * 2 { size *= 2 }
        self.buckets = .init(repeating: -1, count: size)
        self.mask = size - 1
    }

    private func home(_ key: PageKey) -> Int {
        let mixed = (key.file &* 0x9E37_79B9_7F4A_7C15) ^ (key.page &* 0xC2B2_AE3D_27D4_EB4F)
        return Int(truncatingIfNeeded: mixed ^ (mixed >> 31)) & self.mask
    }

    private func bucket(of key: PageKey, keys: [PageKey]) -> Int? {
        var position = self.home(key)
        while true {
            let slot = self.buckets[position]
            if slot < 0 { return nil }
            if keys[Int(slot)] == key { return position }
            position = (position + 1) & self.mask
        }
    }

    /// The slot holding `key`; `keys` maps slots to their keys.
    func slot(for key: PageKey, keys: [PageKey]) -> Int32? {
        self.bucket(of: key, keys: keys).map { self.buckets[$0] }
    }

    /// Adds `slot` for `key`, which must not be present.
    mutating func insert(_ slot: Int32, for key: PageKey) {
        var position = self.home(key)
        while self.buckets[position] >= 0 { position = (position + 1) & self.mask }
        self.buckets[position] = slot
        self.count += 1
    }

    /// Removes `key` (whose slot's entry in `keys` must still be `key`).
    mutating func remove(_ key: PageKey, keys: [PageKey]) {
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
