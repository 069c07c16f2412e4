extension Image {
    /// Most symlinks followed while resolving one path (the kernel's `MAXSYMLINKS`).
    public static let maximumSymlinkFollows = 40

    /// Resolves `path` inside the image, starting at the root.
    ///
    /// Absolute and relative paths are both taken from the root. Symlinks are resolved inside the image only
    /// (an absolute target restarts at the image root), `..` never climbs above the root, and at most
    /// ``maximumSymlinkFollows`` symlinks are followed.
    /// - Parameter followingFinalSymlink: whether a symlink in the last component is followed.
    /// - Throws: `EROFSError` with `notFound`, `notADirectory`, `tooManySymlinks`, or a format error.
    public func resolve(_ path: String, followingFinalSymlink: Bool = true) throws -> Inode {
        try self.resolve(Array(path.utf8), followingFinalSymlink: followingFinalSymlink)
    }

    /// Resolves a path given as raw bytes; see ``resolve(_:followingFinalSymlink:)``. A path ending in `/`
    /// (or a last component `.` or `..`) names a directory: a file there is ``EROFSError/Code/notADirectory``,
    /// as for the kernel's lookup.
    public func resolve(_ path: [UInt8], followingFinalSymlink: Bool = true) throws -> Inode {
        guard !path.contains(0) else {
            throw EROFSError(.invalidArgument, "path contains a NUL byte")
        }
        let last = path.split(separator: 0x2F, omittingEmptySubsequences: false).last ?? []
        if last.isEmpty || last == [0x2E] || last == [0x2E, 0x2E] {
            let inode = try self.resolve(path, following: true)
            guard inode.fileType == .directory else {
                throw EROFSError(.notADirectory, "\(Self.display(path)): not a directory", nid: inode.nid)
            }
            return inode
        }
        return try self.resolve(path, following: followingFinalSymlink)
    }

    private func resolve(_ path: [UInt8], following followingFinalSymlink: Bool) throws -> Inode {
        var stack = [try self.root()]
        var pending = Self.components(path).reversed() as [[UInt8]]
        var follows = 0
        while let component = pending.popLast() {
            if component == [0x2E] { continue }
            if component == [0x2E, 0x2E] {
                if stack.count > 1 { stack.removeLast() }
                continue
            }
            let directory = stack[stack.count - 1]
            guard directory.fileType == .directory else {
                throw EROFSError(
                    .notADirectory, "\(Self.display(path)): not a directory before \"\(Self.display(component))\"",
                    nid: directory.nid)
            }
            guard let entry = try self.lookup(component, in: directory) else {
                throw EROFSError(
                    .notFound, "\(Self.display(path)): no such file or directory (\"\(Self.display(component))\")")
            }
            let inode = try self.inode(entry.nid)
            let isLast = pending.isEmpty
            if inode.fileType == .symlink && (!isLast || followingFinalSymlink) {
                follows += 1
                guard follows <= Self.maximumSymlinkFollows else {
                    throw EROFSError(.tooManySymlinks, "\(Self.display(path)): too many levels of symbolic links")
                }
                let target = try self.symlinkTarget(inode)
                if target.first == 0x2F { stack.removeSubrange(1...) }
                pending.append(contentsOf: Self.components(target).reversed())
                continue
            }
            stack.append(inode)
        }
        return stack[stack.count - 1]
    }

    private static func components(_ path: [UInt8]) -> [[UInt8]] {
        path.split(separator: 0x2F, omittingEmptySubsequences: true).map(Array.init)
    }

    private static func display(_ name: [UInt8]) -> String { String(decoding: name, as: UTF8.self) }
}
