import ArgumentParser
import EROFS
import PageShareServer

/// `pageshare stat IMAGE PATH [--json]`: attributes, xattrs and fingerprint of one file.
struct StatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stat", abstract: "Show one file's attributes, xattrs and fingerprint.")

    @OptionGroup var options: ImageOptions
    @Argument(help: "Path inside the image.") var path: String
    @Flag(name: .customShort("L"), help: "Follow a final symlink.") var dereference = false
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let image = try self.options.open()
        let inode = try image.resolve(self.path, followingFinalSymlink: self.dereference)
        let description = try FileDescription(
            path: self.path, inode: inode, image: image, includeXattrs: true, includeExtents: true)
        if self.json {
            try printJSON(description)
            return
        }
        print("path:        \(description.path)")
        print("nid:         \(description.nid)")
        print("type:        \(description.type)")
        print("mode:        \(description.mode) (\(FileDescription.modeString(inode)))")
        print("uid/gid:     \(description.uid)/\(description.gid)")
        print("size:        \(description.size)")
        print("links:       \(description.nlink)")
        let nanoseconds = String(description.mtimeNanoseconds)
        print("mtime:       \(description.mtime).\(String(repeating: "0", count: 9 - nanoseconds.count))\(nanoseconds)")
        print("layout:      \(description.layout) (\(description.inodeFormat) inode)")
        let extents = description.extents ?? []
        let kinds = Dictionary(grouping: extents, by: \.kind).map { "\($0.value.count) \($0.key)" }.sorted()
        print("extents:     \(extents.count)\(kinds.isEmpty ? "" : " (" + kinds.joined(separator: ", ") + ")")")
        if let target = description.symlinkTarget { print("target:      \(target)") }
        if let device = description.device { print("device:      \(device)") }
        if let fingerprint = description.fingerprint { print("fingerprint: \(fingerprint)") }
        for (name, value) in (description.xattrs ?? [:]).sorted(by: { $0.key < $1.key }) {
            print("xattr:       \(name) = base64:\(value)")
        }
    }
}
