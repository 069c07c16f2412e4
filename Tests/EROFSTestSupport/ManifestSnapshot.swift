import CHostCalls
import Crypto
import EROFS
import Foundation
import Glibc

/// The tree of `image` in the fixture manifests' form, as PageShare's reader sees it: the inode number is
/// the nid.
public func manifestOfImage(_ image: Image) throws -> [ManifestEntry] {
    var entries: [ManifestEntry] = []
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buffer.deallocate() }
    let context = ReadContext()
    try image.walk { pathBytes, inode in
        let path = pathBytes.isEmpty ? "." : String(decoding: pathBytes, as: UTF8.self)
        var digest: String? = nil
        if inode.fileType == .regular {
            var hasher = SHA256()
            try image.readSequentially(inode, using: buffer, context: context) { hasher.update(bufferPointer: $0) }
            digest = hasher.finalize().lowercaseHex
        }
        var xattrs: [String: String] = [:]
        for xattr in try image.xattrs(of: inode) {
            xattrs[xattr.nameString] = Data(xattr.value).base64EncodedString()
        }
        let isDevice = inode.fileType == .characterDevice || inode.fileType == .blockDevice
        entries.append(
            ManifestEntry(
                path: path, type: manifestType(inode.fileType), mode: UInt32(inode.permissions), uid: inode.uid,
                gid: inode.gid, size: inode.size,
                mtimeNanoseconds: Int128(inode.mtime) * 1_000_000_000 + Int128(inode.mtimeNanoseconds), sha256: digest,
                target: inode.fileType == .symlink
                    ? String(decoding: try image.symlinkTarget(inode), as: UTF8.self) : nil,
                rdev: isDevice ? inode.rawDevice : nil, nlink: inode.linkCount, ino: inode.nid, xattrs: xattrs))
    }
    return entries
}

/// A host tree (a kernel mount) in the fixture manifests' form: `lstat`, `readlink`, `llistxattr` and a
/// streamed sha256 of every regular file.
public func manifestOfHostTree(_ root: String) throws -> [ManifestEntry] {
    var entries: [ManifestEntry] = []
    var pending: [String] = ["."]
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buffer.deallocate() }
    while let relative = pending.popLast() {
        let path = relative == "." ? root : root + "/" + relative
        var info = stat()
        guard lstat(path, &info) == 0 else { throw HostCallError(call: "lstat", path: path, errno: errno) }
        let format = info.st_mode & S_IFMT
        var digest: String? = nil
        var target: String? = nil
        if format == S_IFREG {
            digest = try hostFileDigest(path, buffer: buffer)
        } else if format == S_IFLNK {
            let count = readlink(path, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), buffer.count)
            guard count >= 0 else { throw HostCallError(call: "readlink", path: path, errno: errno) }
            target = String(decoding: UnsafeRawBufferPointer(rebasing: buffer[..<count]), as: UTF8.self)
        } else if format == S_IFDIR {
            for name in try FileManager.default.contentsOfDirectory(atPath: path).sorted().reversed() {
                pending.append(relative == "." ? name : relative + "/" + name)
            }
        }
        let isDevice = format == S_IFCHR || format == S_IFBLK
        entries.append(
            ManifestEntry(
                path: relative, type: hostManifestType(format), mode: UInt32(info.st_mode & 0o7777), uid: info.st_uid,
                gid: info.st_gid, size: UInt64(info.st_size),
                mtimeNanoseconds: Int128(info.st_mtim.tv_sec) * 1_000_000_000 + Int128(info.st_mtim.tv_nsec),
                sha256: digest, target: target,
                rdev: isDevice ? linuxEncodedDevice(pageshare_major(info.st_rdev), pageshare_minor(info.st_rdev)) : nil,
                nlink: UInt32(info.st_nlink), ino: UInt64(info.st_ino),
                xattrs: try hostXattrs(path).mapValues { Data($0).base64EncodedString() }))
    }
    return entries
}

/// The sha256 of a host file's content, read in `buffer`-sized pieces, as lowercase hex.
func hostFileDigest(_ path: String, buffer: UnsafeMutableRawBufferPointer) throws -> String {
    let descriptor = open(path, O_RDONLY)
    guard descriptor >= 0 else { throw HostCallError(call: "open", path: path, errno: errno) }
    defer { close(descriptor) }
    var hasher = SHA256()
    while true {
        let count = Glibc.read(descriptor, buffer.baseAddress, buffer.count)
        guard count >= 0 else { throw HostCallError(call: "read", path: path, errno: errno) }
        if count == 0 { break }
        hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[..<count]))
    }
    return hasher.finalize().lowercaseHex
}

/// `st_rdev` in the kernel's `new_encode_dev` form, which the manifests and EROFS inodes use.
func linuxEncodedDevice(_ major: UInt32, _ minor: UInt32) -> UInt32 {
    (minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)
}

private func manifestType(_ type: FileType) -> String {
    switch type {
    case .regular: "file"
    case .directory: "dir"
    case .symlink: "symlink"
    case .characterDevice: "chr"
    case .blockDevice: "blk"
    case .fifo: "fifo"
    case .socket: "socket"
    }
}

private func hostManifestType(_ format: mode_t) -> String {
    switch format {
    case S_IFREG: "file"
    case S_IFDIR: "dir"
    case S_IFLNK: "symlink"
    case S_IFCHR: "chr"
    case S_IFBLK: "blk"
    case S_IFIFO: "fifo"
    default: "socket"
    }
}

extension Sequence<UInt8> {
    /// The bytes as lowercase hex (how the manifests and `sha256sum` write a digest).
    public var lowercaseHex: String { self.map { String(format: "%02x", $0) }.joined() }
}

/// The SHA-256 of `bytes` as lowercase hex.
public func sha256Hex(_ bytes: some Sequence<UInt8>) -> String { SHA256.hash(data: Array(bytes)).lowercaseHex }
