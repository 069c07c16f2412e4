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
                let end = min(inode.size, maximumBytesPerFile)
                var position: UInt64 = 0
                while position < end {
                    let want = Int(min(UInt64(buffer.count), end - position))
                    let count = try self.read(
                        inode, at: position, into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<want]),
                        context: context)
                    guard count > 0 else { break }
                    position += UInt64(count)
                }
                report.bytesRead += position
            default:
                break
            }
        }
        return report
    }
}
