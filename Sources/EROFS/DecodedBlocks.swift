import Synchronization

/// Decoded blocks of an inode that other reads keep coming back to: the metabox (inode records, xattrs,
/// the long prefix table) and the packed inode (fragments: file tails, compressed directories).
///
/// Without it every inode record, dirent block or fragment read decoded its whole pcluster again (a cold
/// `extract` of a metabox image decoded each pcluster hundreds of times); the kernel keeps these blocks
/// in its page cache. Here each block is decoded once while it stays: at most `capacity` blocks per inode,
/// replaced first in, first out. One per opened image and inode; reads of one inode are serialised by its
/// lock (the metabox may read the packed inode, never the reverse, so the two locks cannot deadlock).
final class DecodedBlocks: Sendable {
    private struct State {
        var blocks: [UInt64: [UInt8]] = [:]
        /// Block indexes in insertion order, a ring of `capacity` slots.
        var order: [UInt64] = []
        var next = 0
        /// Keeps the last decoded pcluster, so that the blocks of one pcluster decode it once.
        let context = ReadContext()
    }

    private let state = Mutex(State())
    let capacity: Int
    private let bytesHeld = Atomic<Int>(0)

    init(capacity: Int) { self.capacity = max(capacity, 1) }

    /// Bytes of decoded blocks held.
    var byteCount: Int { self.bytesHeld.load(ordering: .relaxed) }

    /// Reads `inode`'s data from `offset` into `buffer` through the held blocks, decoding missing ones; returns
    /// the bytes read (fewer at the end of the file), as ``Image/read(_:at:into:context:)``.
    func read(
        _ inode: Inode, of image: Image, at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer
    ) throws -> Int {
        guard offset < inode.size, buffer.count > 0 else { return 0 }
        let total = Int(min(UInt64(buffer.count), inode.size - offset))
        let blockSize = UInt64(image.superBlock.blockSize)
        var done = 0
        try self.state.withLock { state in
            while done < total {
                let position = offset + UInt64(done)
                let index = position / blockSize
                let within = Int(position % blockSize)
                let block = try self.block(index, of: inode, image: image, blockSize: blockSize, state: &state)
                let count = min(total - done, block.count - within)
                guard count > 0 else {
                    throw EROFSError.corrupted("decoded block \(index) came up short", nid: inode.nid)
                }
                block.withUnsafeBytes { bytes in
                    UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + count])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[within..<within + count]))
                }
                done += count
            }
        }
        return total
    }

    private func block(
        _ index: UInt64, of inode: Inode, image: Image, blockSize: UInt64, state: inout State
    ) throws -> [UInt8] {
        if let block = state.blocks[index] { return block }
        let start = index * blockSize
        let count = Int(min(blockSize, inode.size - start))
        let block = try [UInt8](unsafeUninitializedCapacity: count) { bytes, initialized in
            initialized = try image.read(
                inode, at: start, into: UnsafeMutableRawBufferPointer(bytes), context: state.context, cached: false)
        }
        if state.order.count < self.capacity {
            state.order.append(index)
        } else {
            let evicted = state.order[state.next]
            self.bytesHeld.subtract(state.blocks.removeValue(forKey: evicted)?.count ?? 0, ordering: .relaxed)
            state.order[state.next] = index
            state.next = (state.next + 1) % self.capacity
        }
        state.blocks[index] = block
        self.bytesHeld.add(block.count, ordering: .relaxed)
        return block
    }
}
