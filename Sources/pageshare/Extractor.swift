import CHostCalls
import EROFS
import Glibc
import SystemPackage

/// Writes an image's tree to a host directory.
///
/// Files are created exclusively (never overwriting), data is copied through one buffer, hard links are
/// recreated from the first path seen for a nid, and directory modes and mtimes are applied last (deepest
/// first) so that writing children does not disturb them. Owners, device nodes and xattrs need root.
final class Extractor {
    private let image: Image
    private let destination: [UInt8]
    private let isRoot = geteuid() == 0
    private var firstPathOfNid: [UInt64: [UInt8]] = [:]
    private var directories: [([UInt8], Inode)] = []
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
    /// Decoding scratch reused across files; keeps a pcluster decoded across buffer-sized reads.
    private let context = ReadContext()
    private(set) var skippedDevices = 0

    init(image: Image, destination: String) throws {
        self.image = image
        var path = Array(destination.utf8)
        while path.count > 1 && path.last == 0x2F { path.removeLast() }
        self.destination = path
        if mkdir(destination, 0o755) != 0 && errno != EEXIST {
            throw HostError(path: destination, operation: "mkdir", errno: errno)
        }
    }

    deinit { self.buffer.deallocate() }

    func run() throws {
        try self.image.walk { path, inode in
            let target = path.isEmpty ? self.destination : self.destination + [0x2F] + path
            do {
                try self.create(target, inode)
            } catch var error as EROFSError {
                // Name the file: the reader's message only knows the nid.
                error.message = "/\(String(decoding: path, as: UTF8.self)): \(error.message)"
                throw error
            }
        }
        for (path, inode) in self.directories.reversed() {
            try self.applyMetadata(path, inode, descriptor: nil)
        }
    }

    private func create(_ path: [UInt8], _ inode: Inode) throws {
        if inode.fileType == .directory {
            if path != self.destination { try self.check(path, "mkdir") { mkdir($0, 0o700) } }
            self.directories.append((path, inode))
            return
        }
        if inode.linkCount > 1 {
            if let first = self.firstPathOfNid[inode.nid] {
                try self.check(path, "link") { target in first.cString { link($0, target) } }
                return
            }
            self.firstPathOfNid[inode.nid] = path
        }
        switch inode.fileType {
        case .regular:
            try self.writeRegular(path, inode)
            return
        case .symlink:
            let target = try self.image.symlinkTarget(inode) + [0]
            try self.check(path, "symlink") { name in target.withUnsafeBufferPointer { symlink($0.baseAddress!, name) }
            }
        case .characterDevice, .blockDevice:
            guard self.isRoot else {
                self.skippedDevices += 1
                return
            }
            let device = pageshare_makedev(inode.deviceMajor, inode.deviceMinor)
            try self.check(path, "mknod") { mknod($0, mode_t(inode.mode), device) }
        case .fifo:
            try self.check(path, "mkfifo") { mkfifo($0, 0o600) }
        case .socket:
            try self.check(path, "mknod") { mknod($0, mode_t(inode.mode), 0) }
        case .directory:
            return
        }
        try self.applyMetadata(path, inode, descriptor: nil)
    }

    private func writeRegular(_ path: [UInt8], _ inode: Inode) throws {
        let raw = path.cString { open($0, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600) }
        guard raw >= 0 else { throw HostError(path: path, operation: "open", errno: errno) }
        let descriptor = FileDescriptor(rawValue: raw)
        defer { try? descriptor.close() }
        try self.image.readSequentially(inode, using: self.buffer, context: self.context) { chunk in
            do {
                _ = try descriptor.writeAll(chunk)
            } catch let error as Errno {
                throw HostError(path: path, operation: "write", errno: error.rawValue)
            }
        }
        try self.applyMetadata(path, inode, descriptor: raw)
    }

    /// Owner (root only), xattrs (root only), mode and mtime, in that order: chown clears set-id bits, so
    /// the mode comes after it. With an open descriptor (regular files) the f* calls skip the path walks.
    private func applyMetadata(_ path: [UInt8], _ inode: Inode, descriptor: Int32?) throws {
        func checked(_ operation: String, _ result: Int32) throws {
            if result != 0 { throw HostError(path: path, operation: operation, errno: errno) }
        }
        if self.isRoot {
            if let descriptor {
                try checked("fchown", fchown(descriptor, inode.uid, inode.gid))
            } else {
                try self.check(path, "lchown") { lchown($0, inode.uid, inode.gid) }
            }
            for xattr in try self.image.xattrs(of: inode) {
                let name = xattr.name + [0]
                let result = name.withUnsafeBufferPointer { namePointer in
                    xattr.value.withUnsafeBytes { value in
                        if let descriptor {
                            return fsetxattr(descriptor, namePointer.baseAddress!, value.baseAddress, value.count, 0)
                        }
                        return path.cString {
                            lsetxattr($0, namePointer.baseAddress!, value.baseAddress, value.count, 0)
                        }
                    }
                }
                try checked("setxattr \(xattr.nameString)", result)
            }
        }
        if inode.fileType != .symlink {
            if let descriptor {
                try checked("fchmod", fchmod(descriptor, mode_t(inode.permissions)))
            } else {
                try self.check(path, "chmod") { chmod($0, mode_t(inode.permissions)) }
            }
        }
        var times = [
            timespec(tv_sec: Int(inode.mtime), tv_nsec: Int(inode.mtimeNanoseconds)),
            timespec(tv_sec: Int(inode.mtime), tv_nsec: Int(inode.mtimeNanoseconds)),
        ]
        if let descriptor {
            try checked("futimens", futimens(descriptor, &times))
        } else {
            try self.check(path, "utimensat") { utimensat(AT_FDCWD, $0, &times, AT_SYMLINK_NOFOLLOW) }
        }
    }

    private func check(_ path: [UInt8], _ operation: String, _ call: (UnsafePointer<CChar>) -> Int32) throws {
        if path.cString(call) != 0 { throw HostError(path: path, operation: operation, errno: errno) }
    }
}

/// A failed host filesystem call during extraction.
struct HostError: Error, CustomStringConvertible {
    var path: String
    var operation: String
    var errno: Int32

    init(path: [UInt8], operation: String, errno: Int32) {
        self.init(path: String(decoding: path, as: UTF8.self), operation: operation, errno: errno)
    }

    init(path: String, operation: String, errno: Int32) {
        self.path = path
        self.operation = operation
        self.errno = errno
    }

    var description: String { "\(self.operation) \(self.path): \(String(cString: strerror(self.errno)))" }
}

extension Array where Element == UInt8 {
    /// Calls `body` with the bytes as a NUL-terminated C string.
    func cString<Result>(_ body: (UnsafePointer<CChar>) throws -> Result) rethrows -> Result {
        try (self + [0]).withUnsafeBufferPointer { buffer in
            try buffer.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
        }
    }
}

/// Prints one line on stderr.
func printError(_ message: String) {
    _ = try? FileDescriptor.standardError.writeAll(Array((message + "\n").utf8))
}
