extension Image {
    /// Visits every inode reachable from the root, depth first, parents before children; `path` is relative
    /// to the root (empty for the root itself), its components joined with `/`.
    ///
    /// `.` and `..` entries are skipped. A directory reached twice (a cycle, or a hard-linked directory)
    /// throws ``EROFSError/Code/corrupted``, so the walk always ends. Uses an explicit stack, so a deep
    /// tree cannot exhaust the thread's stack.
    ///
    /// - Parameter recover: called with an `EROFSError` that `body` or the listing of a directory threw,
    ///   and the path it concerns; when it returns instead of throwing, the walk goes on without that
    ///   inode's subtree. Without it the first error ends the walk.
    public func walk(
        recovering recover: ((_ path: [UInt8], _ error: EROFSError) throws -> Void)? = nil,
        _ body: (_ path: [UInt8], _ inode: Inode) throws -> Void
    ) throws {
        let root = try self.root()
        var visitedDirectories: Set<UInt64> = [root.nid]
        var pending: [([UInt8], Inode)] = [([], root)]
        while let (path, inode) = pending.popLast() {
            do {
                try body(path, inode)
                guard inode.fileType == .directory else { continue }
                var children: [([UInt8], Inode)] = []
                // An error that ends the walk names the directory; one handed to `recover` comes with its path.
                try Self.naming(recover == nil ? path : nil) {
                    try self.forEachEntry(of: inode) { entry in
                        guard !entry.isDotOrDotDot else { return }
                        let child = try self.inode(entry.nid)
                        if child.fileType == .directory {
                            guard visitedDirectories.insert(child.nid).inserted else {
                                throw EROFSError.corrupted("directory cycle: directory reached twice", nid: child.nid)
                            }
                        }
                        children.append((path.isEmpty ? entry.name : path + [0x2F] + entry.name, child))
                    }
                }
                pending.append(contentsOf: children.reversed())
            } catch let error as EROFSError {
                guard let recover else { throw error }
                try recover(path, error)
            }
        }
    }

    /// Runs `body`; an `EROFSError` it throws names the directory `path` being listed (when given).
    private static func naming(_ path: [UInt8]?, _ body: () throws -> Void) throws {
        guard let path else { return try body() }
        do {
            try body()
        } catch var error as EROFSError {
            error.message = "/\(String(decoding: path, as: UTF8.self)): \(error.message)"
            throw error
        }
    }
}
