import SystemPackage

/// An image file read with `pread(2)` through swift-system's `FileDescriptor`.
///
/// `Sendable` and offset-free, so many threads may read through one instance. The descriptor is closed when
/// the last reference goes away.
public final class FileImageSource: ImageSource {
    private let descriptor: FileDescriptor
    public let size: UInt64
    /// The path the source was opened from (for messages).
    public let path: String
    /// What `fstat` said at open: what ``contentChange()`` compares with.
    public let openedStatus: FileStatus

    /// Opens `path` read-only. Throws `EROFSError` (``EROFSError/Code/ioFailure``) naming the path and errno.
    public init(path: String) throws {
        do {
            let descriptor = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
            do {
                let end = try descriptor.seek(offset: 0, from: .end)
                self.size = UInt64(end)
                self.openedStatus = try FileStatus(descriptor: descriptor.rawValue)
            } catch {
                try? descriptor.close()
                throw error
            }
            self.descriptor = descriptor
            self.path = path
        } catch let errno as Errno {
            throw EROFSError(.ioFailure, "cannot open \(path): \(errno)")
        }
    }

    deinit { try? self.descriptor.close() }

    /// `fstat` of the open descriptor now.
    public func currentStatus() throws -> FileStatus { try FileStatus(descriptor: self.descriptor.rawValue) }

    /// Size or modification time differ from those at open: the file was written to (a file renamed or
    /// deleted while open still holds its bytes, and is not a change).
    public func contentChange() -> String? {
        guard let now = try? self.currentStatus() else { return "\(self.path): fstat failed" }
        let then = self.openedStatus
        if now.size != then.size { return "\(self.path) changed on disk: size \(then.size) -> \(now.size) bytes" }
        if now.modification != then.modification { return "\(self.path) changed on disk: modified since attached" }
        return nil
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try self.checkRange(offset, buffer.count)
        var done = 0
        while done < buffer.count {
            let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[done...])
            let count: Int
            do {
                count = try self.descriptor.read(fromAbsoluteOffset: Int64(offset) + Int64(done), into: chunk)
            } catch let errno as Errno {
                throw EROFSError(
                    .ioFailure, "read of \(path) failed: \(errno)", byteOffset: offset + UInt64(done))
            }
            guard count > 0 else {
                throw EROFSError(.ioFailure, "\(path) ended early (truncated?)", byteOffset: offset + UInt64(done))
            }
            done += count
        }
    }
}
