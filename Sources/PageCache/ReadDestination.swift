/// Where a read through the cache puts its bytes: copied into caller memory, or nowhere — the range is only
/// made resident (filled where missing), to be lent afterwards without a copy.
struct ReadDestination {
    private let memory: UnsafeMutableRawBufferPointer?
    /// Bytes asked for.
    let count: Int

    /// Copies into `buffer`.
    static func copy(into buffer: UnsafeMutableRawBufferPointer) -> Self { Self(memory: buffer, count: buffer.count) }

    /// Makes `count` bytes resident, copying nothing.
    static func resident(_ count: Int) -> Self { Self(memory: nil, count: count) }

    /// The part of a page or chunk to copy out when it holds `range`: all of it, or none when only making
    /// bytes resident.
    func copied(_ range: Range<Int>) -> Range<Int> { self.memory == nil ? range.lowerBound..<range.lowerBound : range }

    /// The memory for bytes `range` of the read (empty when only making them resident).
    subscript(_ range: Range<Int>) -> UnsafeMutableRawBufferPointer {
        guard let memory = self.memory else { return UnsafeMutableRawBufferPointer(start: nil, count: 0) }
        return UnsafeMutableRawBufferPointer(rebasing: memory[range])
    }
}
