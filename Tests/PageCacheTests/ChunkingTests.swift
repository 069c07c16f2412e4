import EROFSTestSupport
import Foundation
import Testing

@testable import PageCache

/// Content-defined chunks and their identities: the units of sharing below a whole file.
@Suite("Content-defined chunks")
struct ChunkingTests {
    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] { PseudoRandomBytes.make(count, seed: seed) }

    static func chunks(_ bytes: [UInt8], _ chunker: ContentDefinedChunker) -> [ChunkIdentity] {
        var identities: [ChunkIdentity] = []
        bytes.withUnsafeBytes { chunker.forEachChunk(of: $0) { identities.append(ChunkIdentity(of: $0)) } }
        return identities
    }

    @Test("identities are XXH3-128 as xxh128sum prints it, and the length")
    func identityKnownAnswer() {
        let empty = [UInt8]().withUnsafeBytes { ChunkIdentity(of: $0) }
        #expect(empty.description == "xxh3-128:99aa06d3014798d86001c324468d497f/0")
        let a = Array("abc".utf8).withUnsafeBytes { ChunkIdentity(of: $0) }
        let b = Array("abd".utf8).withUnsafeBytes { ChunkIdentity(of: $0) }
        #expect(a != b && a.length == 3)
    }

    @Test(
        "chunks cover the file in order, between the minimum and the maximum (the last may be shorter), near the average"
    )
    func sizes() {
        let chunker = ContentDefinedChunker(averageBytes: 4096)
        let data = Self.bytes(4 << 20, seed: 7)
        var lengths: [Int] = []
        data.withUnsafeBytes { chunker.forEachChunk(of: $0) { lengths.append($0.count) } }
        #expect(lengths.reduce(0, +) == data.count)
        #expect(lengths.dropLast().allSatisfy { $0 >= 1024 && $0 <= 16384 })
        let average = Double(data.count) / Double(lengths.count)
        #expect(average > 3000 && average < 6500, "average \(average)")
    }

    @Test("content shifted by an insertion keeps its chunks; aligned pages would not")
    func shiftResistance() {
        let chunker = ContentDefinedChunker(averageBytes: 4096)
        let original = Self.bytes(2 << 20, seed: 11)
        let shifted = Self.bytes(100, seed: 3) + original
        let before = Set(Self.chunks(original, chunker))
        let after = Self.chunks(shifted, chunker)
        let kept = after.filter { before.contains($0) }.map(\.length).reduce(0, +)
        #expect(Double(kept) / Double(original.count) > 0.97, "\(kept) of \(original.count) bytes in equal chunks")
        func pages(_ bytes: [UInt8]) -> Set<ChunkIdentity> {
            bytes.withUnsafeBytes { raw in
                Set(
                    stride(from: 0, to: raw.count, by: 4096).map {
                        ChunkIdentity(of: UnsafeRawBufferPointer(rebasing: raw[$0..<min(raw.count, $0 + 4096)]))
                    })
            }
        }
        #expect(pages(original).intersection(pages(shifted)).isEmpty, "no aligned page survives the shift")
    }

    @Test("boundaries follow the documented rule: splitmix64 gear table, top bits zero, normalized at the average")
    func boundariesFollowTheRule() {
        // The rule written out plainly (a second implementation): the chunker's boundaries must be its.
        var state: UInt64 = 0x5045_4745_5348_4152
        let gear: [UInt64] = (0..<256).map { _ in
            state &+= 0x9E37_79B9_7F4A_7C15
            var value = state
            value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
            value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
            return value ^ (value >> 31)
        }
        let data = Self.bytes(300_000, seed: 1)
        var expected: [Int] = []
        var start = 0
        while start < data.count {
            var hash: UInt64 = 0
            var length = min(16384, data.count - start)
            var position = start + 1024
            while position < start + length {
                hash = hash << 1 &+ gear[Int(data[position])]
                let bits = position - start < 4096 ? 14 : 10  // 12 ± 2 bits for a 4 KiB average
                if hash >> (64 - bits) == 0 {
                    length = position - start + 1
                    break
                }
                position += 1
            }
            expected.append(length)
            start += length
        }
        let lengths = Self.chunks(data, ContentDefinedChunker(averageBytes: 4096)).map(\.length)
        #expect(lengths == expected)
    }
}
