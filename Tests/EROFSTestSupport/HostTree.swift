import CHostCalls
import Foundation
import Glibc

/// One file of a tree as compared between readers: everything `pageshare extract` must reproduce.
public struct TreeEntry: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable { case regular, directory, symlink, characterDevice, blockDevice, fifo, socket }
    public var kind: Kind
    public var permissions: UInt32
    public var uid: UInt32
    public var gid: UInt32
    /// Size of non-directories (host directory sizes are not comparable).
    public var size: UInt64?
    public var mtime: Int64
    public var mtimeNanoseconds: UInt32
    /// Link count of non-directories.
    public var linkCount: UInt32?
    public var symlinkTarget: [UInt8]?
    public var deviceMajor: UInt32?
    public var deviceMinor: UInt32?
    public var xattrs: [String: [UInt8]]
    public var content: [UInt8]?

    public init(
        kind: Kind, permissions: UInt32, uid: UInt32, gid: UInt32, size: UInt64?, mtime: Int64,
        mtimeNanoseconds: UInt32, linkCount: UInt32?, symlinkTarget: [UInt8]?, deviceMajor: UInt32?,
        deviceMinor: UInt32?, xattrs: [String: [UInt8]], content: [UInt8]?
    ) {
        self.kind = kind
        self.permissions = permissions
        self.uid = uid
        self.gid = gid
        self.size = size
        self.mtime = mtime
        self.mtimeNanoseconds = mtimeNanoseconds
        self.linkCount = linkCount
        self.symlinkTarget = symlinkTarget
        self.deviceMajor = deviceMajor
        self.deviceMinor = deviceMinor
        self.xattrs = xattrs
        self.content = content
    }

    /// The entry with set-uid, set-gid and sticky bits cleared (for oracles that drop them).
    public func maskingSpecialBits() -> TreeEntry {
        var copy = self
        copy.permissions &= 0o777
        return copy
    }

    public var description: String {
        var text = "\(self.kind) 0\(String(self.permissions, radix: 8)) \(self.uid):\(self.gid)"
        if let size = self.size { text += " size=\(size)" }
        text += " mtime=\(self.mtime).\(self.mtimeNanoseconds)"
        if let linkCount = self.linkCount { text += " nlink=\(linkCount)" }
        if let target = self.symlinkTarget { text += " -> \(String(decoding: target, as: UTF8.self))" }
        if let major = self.deviceMajor, let minor = self.deviceMinor { text += " dev=\(major):\(minor)" }
        if !self.xattrs.isEmpty { text += " xattrs=\(self.xattrs.keys.sorted())" }
        if let content = self.content { text += " content=\(content.count)B" }
        return text
    }
}

/// What differs between two entries, field by field (for readable test failures).
public func differences(_ lhs: TreeEntry, _ rhs: TreeEntry, ignoring: Set<String> = []) -> [String] {
    var found: [String] = []
    func check<T: Equatable>(_ name: String, _ a: T, _ b: T) {
        if !ignoring.contains(name) && a != b { found.append("\(name): \(a) != \(b)") }
    }
    check("kind", lhs.kind, rhs.kind)
    check("permissions", lhs.permissions, rhs.permissions)
    check("owner", "\(lhs.uid):\(lhs.gid)", "\(rhs.uid):\(rhs.gid)")
    check("size", lhs.size, rhs.size)
    check("mtime", lhs.mtime, rhs.mtime)
    check("mtimeNanoseconds", lhs.mtimeNanoseconds, rhs.mtimeNanoseconds)
    check("linkCount", lhs.linkCount, rhs.linkCount)
    check("symlinkTarget", lhs.symlinkTarget, rhs.symlinkTarget)
    check(
        "device", "\(String(describing: lhs.deviceMajor)):\(String(describing: lhs.deviceMinor))",
        "\(String(describing: rhs.deviceMajor)):\(String(describing: rhs.deviceMinor))")
    check("xattrs", lhs.xattrs, rhs.xattrs)
    if !ignoring.contains("content") && lhs.content != rhs.content {
        found.append("content differs (\(lhs.content?.count ?? -1) vs \(rhs.content?.count ?? -1) bytes)")
    }
    return found
}

/// Compares two trees; returns one line per difference (empty when equal).
public func compareTrees(
    _ lhs: [String: TreeEntry], _ rhs: [String: TreeEntry], ignoring: Set<String> = []
) -> [String] {
    var problems: [String] = []
    for path in Set(lhs.keys).union(rhs.keys).sorted() {
        switch (lhs[path], rhs[path]) {
        case (let a?, let b?):
            for difference in differences(a, b, ignoring: ignoring) { problems.append("\(path): \(difference)") }
        case (nil, _): problems.append("\(path): missing on the left")
        case (_, nil): problems.append("\(path): missing on the right")
        }
    }
    return problems
}

/// Reads a host directory tree (lstat, readlink, xattrs, contents) keyed by path relative to `root`
/// ("" for the root).
public func snapshotHostTree(_ root: String, readingXattrs: Bool = true) throws -> [String: TreeEntry] {
    var result: [String: TreeEntry] = [:]
    var pending: [String] = [""]
    while let relative = pending.popLast() {
        let path = relative.isEmpty ? root : root + "/" + relative
        var info = stat()
        guard lstat(path, &info) == 0 else { throw HostCallError(call: "lstat", path: path, errno: errno) }
        let kind: TreeEntry.Kind
        switch info.st_mode & S_IFMT {
        case S_IFREG: kind = .regular
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symlink
        case S_IFCHR: kind = .characterDevice
        case S_IFBLK: kind = .blockDevice
        case S_IFIFO: kind = .fifo
        default: kind = .socket
        }
        var target: [UInt8]? = nil
        if kind == .symlink {
            var buffer = [UInt8](repeating: 0, count: 8192)
            let count = readlink(path, &buffer, buffer.count)
            guard count >= 0 else { throw HostCallError(call: "readlink", path: path, errno: errno) }
            target = Array(buffer[0..<count])
        }
        let isDevice = kind == .characterDevice || kind == .blockDevice
        result[relative] = TreeEntry(
            kind: kind, permissions: UInt32(info.st_mode & 0o7777), uid: info.st_uid, gid: info.st_gid,
            size: kind == .directory ? nil : UInt64(info.st_size), mtime: Int64(info.st_mtim.tv_sec),
            mtimeNanoseconds: UInt32(info.st_mtim.tv_nsec), linkCount: kind == .directory ? nil : UInt32(info.st_nlink),
            symlinkTarget: target, deviceMajor: isDevice ? pageshare_major(info.st_rdev) : nil,
            deviceMinor: isDevice ? pageshare_minor(info.st_rdev) : nil,
            xattrs: readingXattrs ? try hostXattrs(path) : [:],
            content: kind == .regular ? try Array(Data(contentsOf: URL(fileURLWithPath: path))) : nil)
        if kind == .directory {
            for name in try FileManager.default.contentsOfDirectory(atPath: path) {
                pending.append(relative.isEmpty ? name : relative + "/" + name)
            }
        }
    }
    return result
}

/// The xattrs of `path` (not following symlinks).
public func hostXattrs(_ path: String) throws -> [String: [UInt8]] {
    let size = llistxattr(path, nil, 0)
    if size < 0 {
        if errno == ENOTSUP { return [:] }
        throw HostCallError(call: "llistxattr", path: path, errno: errno)
    }
    guard size > 0 else { return [:] }
    var names = [CChar](repeating: 0, count: size)
    let listed = llistxattr(path, &names, size)
    guard listed >= 0 else { throw HostCallError(call: "llistxattr", path: path, errno: errno) }
    var result: [String: [UInt8]] = [:]
    for nameBytes in names[0..<listed].split(separator: 0) {
        let name = String(decoding: nameBytes.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let valueSize = lgetxattr(path, name, nil, 0)
        guard valueSize >= 0 else { throw HostCallError(call: "lgetxattr", path: path, errno: errno) }
        var value = [UInt8](repeating: 0, count: valueSize)
        let read = lgetxattr(path, name, &value, valueSize)
        guard read >= 0 else { throw HostCallError(call: "lgetxattr", path: path, errno: errno) }
        result[name] = Array(value[0..<read])
    }
    return result
}

/// A failed host call in test support.
public struct HostCallError: Error, CustomStringConvertible {
    public var call: String
    public var path: String
    public var errno: Int32
    public var description: String { "\(self.call) \(self.path): \(String(cString: strerror(self.errno)))" }
}
