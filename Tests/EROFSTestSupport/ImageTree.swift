import EROFS

/// Reads every inode reachable in `image` into the same shape as ``snapshotHostTree(_:readingXattrs:)``.
public func snapshotImage(_ image: Image, readingXattrs: Bool = true) throws -> [String: TreeEntry] {
    var result: [String: TreeEntry] = [:]
    try image.walk { pathBytes, inode in
        let path = String(decoding: pathBytes, as: UTF8.self)
        let kind: TreeEntry.Kind =
            switch inode.fileType {
            case .regular: .regular
            case .directory: .directory
            case .symlink: .symlink
            case .characterDevice: .characterDevice
            case .blockDevice: .blockDevice
            case .fifo: .fifo
            case .socket: .socket
            }
        var xattrs: [String: [UInt8]] = [:]
        if readingXattrs {
            for xattr in try image.xattrs(of: inode) { xattrs[xattr.nameString] = xattr.value }
        }
        let isDevice = kind == .characterDevice || kind == .blockDevice
        result[path] = TreeEntry(
            kind: kind, permissions: UInt32(inode.permissions), uid: inode.uid, gid: inode.gid,
            size: kind == .directory ? nil : inode.size, mtime: inode.mtime,
            mtimeNanoseconds: inode.mtimeNanoseconds, linkCount: kind == .directory ? nil : inode.linkCount,
            symlinkTarget: kind == .symlink ? try image.symlinkTarget(inode) : nil,
            deviceMajor: isDevice ? inode.deviceMajor : nil, deviceMinor: isDevice ? inode.deviceMinor : nil,
            xattrs: xattrs,
            content: kind == .regular ? try image.readBytes(inode, count: Int(inode.size)) : nil)
    }
    return result
}
