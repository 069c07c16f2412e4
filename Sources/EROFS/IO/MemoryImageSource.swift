/// An image held in memory: for tests and the fuzzer, which need no files.
public struct MemoryImageSource: ImageSource {
    private let bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var size: UInt64 { UInt64(self.bytes.count) }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try self.checkRange(offset, buffer.count)
        guard buffer.count > 0 else { return }
        self.bytes.withUnsafeBytes { source in
            let start = Int(offset)
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[start..<start + buffer.count]))
        }
    }
}
