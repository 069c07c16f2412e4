/// What ``Image/check(maximumBytesPerFile:)`` visited.
public struct CheckReport: Sendable, Hashable {
    public var inodes = 0
    public var directories = 0
    public var xattrs = 0
    public var bytesRead: UInt64 = 0
}

extension Image {
    /// Reads everything reachable: every inode, directory entry, xattr, symlink target and data byte (the job
    /// `fsck.erofs --extract` does, without writing). Throws the first `EROFSError` found.
    ///
    /// - Parameter maximumBytesPerFile: stop reading a file's data after this many bytes (the fuzzer bounds
    ///   its work with it; the default reads everything).
    public func check(maximumBytesPerFile: UInt64 = .max) throws -> CheckReport {
        var report = CheckReport()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { buffer.deallocate() }
        let context = ReadContext()
        try self.walk { _, inode in
            report.inodes += 1
            report.xattrs += try self.xattrs(of: inode).count
            switch inode.fileType {
            case .directory:
                report.directories += 1
            case .symlink:
                report.bytesRead += UInt64(try self.symlinkTarget(inode).count)
            case .regular:
                report.bytesRead += try self.readSequentially(
                    inode, range: 0..<min(inode.size, maximumBytesPerFile), using: buffer, context: context
                ) { _ in }
            default:
                break
            }
        }
        return report
    }
}
