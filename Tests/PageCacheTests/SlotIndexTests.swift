import Testing

@testable import PageCache

/// The shard's open-addressing page index against a Dictionary model, under random inserts and removals
/// that collide on purpose (few files, nearby pages, a full table half the time).
@Suite("Slot index")
struct SlotIndexTests {
    @Test("random inserts and removals agree with a Dictionary", arguments: [1, 7, 64, 1000])
    func agreesWithDictionary(slots: Int) {
        var generator = SystemRandomNumberGenerator()
        var index = SlotIndex<PageKey>(slots: slots)
        var keys = [PageKey](repeating: PageKey(file: 0, page: 0), count: slots)
        var model: [PageKey: Int32] = [:]
        var free = Array(0..<Int32(slots))
        for _ in 0..<(slots * 200) {
            if !free.isEmpty && (model.isEmpty || Bool.random(using: &generator)) {
                let key = PageKey(
                    file: UInt64.random(in: 1...3, using: &generator),
                    page: UInt64.random(in: 0..<UInt64(slots * 3), using: &generator))
                guard model[key] == nil else { continue }
                let slot = free.removeLast()
                keys[Int(slot)] = key
                index.insert(slot, for: key)
                model[key] = slot
            } else {
                let (key, slot) = model.randomElement(using: &generator)!
                index.remove(key, keys: keys)
                model[key] = nil
                free.append(slot)
            }
            #expect(index.count == model.count)
        }
        for (key, slot) in model { #expect(index.slot(for: key, keys: keys) == slot) }
        #expect(Set(index.slots) == Set(model.values))
        let absent = PageKey(file: 99, page: 0)
        #expect(index.slot(for: absent, keys: keys) == nil)
        #expect(index.bytes <= max(8, slots * 2 * 4 * 2), "at most 2 buckets a slot, rounded to a power of two")
    }

    @Test("an index made for one slot grows to thousands, keeping every entry")
    func grows() {
        var index = SlotIndex<PageKey>(slots: 1)
        var keys: [PageKey] = []
        for slot in 0..<5000 {
            keys.append(PageKey(file: UInt64(slot % 7), page: UInt64(slot)))
            index.reserve(slots: slot + 1, keys: keys)
            index.insert(Int32(slot), for: keys[slot])
        }
        #expect(index.count == 5000)
        #expect(index.bytes == 16384 * 4, "the smallest power of two at least twice the entries")
        for (slot, key) in keys.enumerated() { #expect(index.slot(for: key, keys: keys) == Int32(slot)) }
        for slot in stride(from: 0, to: 5000, by: 2) { index.remove(keys[slot], keys: keys) }
        for (slot, key) in keys.enumerated() {
            #expect(index.slot(for: key, keys: keys) == (slot % 2 == 0 ? nil : Int32(slot)))
        }
    }
}
