import ArgumentParser
import EROFS
import PageShareServer

/// `pageshare ls IMAGE [PATH] [-l] [-R] [--json]`.
struct LsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List a directory of an image.")

    @OptionGroup var options: ImageOptions
    @Argument(help: "Path inside the image (default: the root).") var path: String = "/"
    @Flag(name: .short, help: "Long listing: mode, links, owner, size, mtime.") var long = false
    @Flag(name: .customShort("R"), help: "List subdirectories recursively.") var recursive = false
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let image = try self.options.open()
        let start = try image.resolve(self.path, followingFinalSymlink: true)
        let base = self.path.hasSuffix("/") ? String(self.path.dropLast()) : self.path
        var rows: [(String, Inode)] = []
        if start.fileType != .directory {
            rows.append((self.path, start))
        } else if self.recursive {
            let subtree = try image.resolve(self.path)
            try self.collectRecursive(image: image, directory: subtree, prefix: base, into: &rows)
        } else {
            for entry in try image.entries(of: start) where !entry.isDotOrDotDot {
                rows.append((entry.nameString, try image.inode(entry.nid)))
            }
        }
        if self.json {
            try printJSON(
                rows.map { try FileDescription(path: $0.0, inode: $0.1, image: image, includeXattrs: false) })
            return
        }
        for (name, inode) in rows {
            print(self.long ? try FileDescription.longLine(name: name, inode: inode, image: image) : name)
        }
    }

    private func collectRecursive(
        image: Image, directory: Inode, prefix: String, into rows: inout [(String, Inode)]
    ) throws {
        var visited: Set<UInt64> = [directory.nid]
        var pending: [(String, Inode)] = [(prefix, directory)]
        while let (dirPath, dirInode) = pending.popLast() {
            var children: [(String, Inode)] = []
            for entry in try image.entries(of: dirInode) where !entry.isDotOrDotDot {
                let inode = try image.inode(entry.nid)
                let childPath = dirPath + "/" + entry.nameString
                rows.append((childPath, inode))
                if inode.fileType == .directory {
                    guard visited.insert(inode.nid).inserted else {
                        throw EROFSError(.corrupted, "directory cycle at \(childPath)", nid: inode.nid)
                    }
                    children.append((childPath, inode))
                }
            }
            pending.append(contentsOf: children.reversed())
        }
    }
}
