import Testing

@testable import PageCache

/// The shard's open-addressing page index against a Dictionary model, under random inserts and removals
/// that collide on purpose (few files, nearby pages, a full table half the time).
@Suite("Slot index")
struct SlotIndexTests {
    @Test("random inserts and removals agree with a Dictionary", arguments: [1, 7, 64, 1000])
    func agreesWithDictionary(slots: Int) {
        var generator = SystemRandomNumberGenerator()
        var index = SlotIndex(slots: slots)
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
}
