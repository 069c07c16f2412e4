import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The parts of `fstat` that tell whether an open image file is still the one that was opened.
public struct FileStatus: Sendable, Hashable {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    public var linkCount: UInt64
    /// `st_mtim` as (seconds, nanoseconds). (Not `st_ctim`: a rename or chmod changes it, and neither
    /// changes the bytes.)
    public var modification: Timestamp

    public struct Timestamp: Sendable, Hashable {
        public var seconds: Int
        public var nanoseconds: Int
    }

    /// `fstat` of `descriptor`.
    public init(descriptor: Int32) throws {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw Errno(rawValue: errno) }
        self.init(info)
    }

    /// `stat` of `path` (following symlinks), or nil when it does not exist or cannot be reached.
    public init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        self.init(info)
    }

    private init(_ info: stat) {
        self.device = UInt64(info.st_dev)
        self.inode = UInt64(info.st_ino)
        self.size = Int64(info.st_size)
        self.linkCount = UInt64(info.st_nlink)
        self.modification = Timestamp(seconds: info.st_mtim.tv_sec, nanoseconds: info.st_mtim.tv_nsec)
    }

    /// Whether `other` is the same file (device and inode).
    public func isSameFile(as other: FileStatus) -> Bool { self.device == other.device && self.inode == other.inode }
}
