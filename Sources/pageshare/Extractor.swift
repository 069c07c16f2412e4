import CHostCalls
import EROFS
import Glibc
import SystemPackage

/// Writes an image's tree to a host directory.
///
/// Nothing is created outside the destination, whatever the image says: every file is made by an `*at`
/// call on the descriptor of its parent directory, and each parent is opened component by component from
/// the destination's descriptor with `O_NOFOLLOW | O_DIRECTORY` (a symlink or a non-directory in the way
/// fails the open), never by a joined path string. Names come from the reader, which refuses dirents that
/// are empty, hold `/` or NUL, or repeat `.`/`..`.
///
/// Files are created exclusively (never overwriting), data is copied through one buffer, hard links are
/// recreated from the first path seen for a nid, and directory modes and mtimes are applied last (deepest
/// first) so that writing children does not disturb them. Owners, device nodes and xattrs need root.
final class Extractor {
    private let image: Image
    private let destinationName: String
    /// The destination directory, opened once.
    private let root: Int32
    private let isRoot = geteuid() == 0
    /// Path components of the first name seen for each hard-linked nid.
    private var firstPathOfNid: [UInt64: [[UInt8]]] = [:]
    private var directories: [([[UInt8]], Inode)] = []
    /// The directories below the destination now open, outermost first: the walk is depth first, so the
    /// parent of the next entry is almost always a prefix of this chain.
    private var openChain: [(name: [UInt8], descriptor: Int32)] = []
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
    /// As many zero bytes as `buffer` holds, to tell a chunk of zeros with `memcmp`.
    private let zeros: UnsafeMutableRawBufferPointer = {
        let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        return zeros
    }()
    /// Decoding scratch reused across files; keeps a pcluster decoded across buffer-sized reads.
    private let context = ReadContext()
    private(set) var skippedDevices = 0
    /// The process's umask, restored when done (it is 0 meanwhile: files are made with their own modes).
    private let savedUmask: mode_t

    init(image: Image, destination: String) throws {
        self.image = image
        self.destinationName = destination
        self.savedUmask = umask(0)
        if mkdir(destination, 0o755) != 0 && errno != EEXIST {
            throw HostError(path: destination, operation: "mkdir", errno: errno)
        }
        let root = open(destination, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw HostError(path: destination, operation: "open", errno: errno) }
        self.root = root
    }

    deinit {
        umask(self.savedUmask)
        self.buffer.deallocate()
        self.zeros.deallocate()
        for (_, descriptor) in self.openChain { close(descriptor) }
        close(self.root)
    }

    func run() throws {
        try self.image.walk { path, inode in
            let components = path.split(separator: 0x2F).map(Array.init)
            do {
                try self.create(components, inode)
            } catch var error as EROFSError {
                // Name the file: the reader's message only knows the nid.
                error.message = "/\(String(decoding: path, as: UTF8.self)): \(error.message)"
                throw error
            }
        }
        for (components, inode) in self.directories.reversed() {
            try self.withOpenDirectory(components) { try self.applyMetadata(to: $0, components, inode) }
        }
    }

    private func create(_ components: [[UInt8]], _ inode: Inode) throws {
        if inode.fileType == .directory {
            if let name = components.last {
                let parent = try self.parentDirectory(of: components)
                try self.check(components, "mkdir") { mkdirat(parent, name.cString, 0o700) }
            }
            self.directories.append((components, inode))
            return
        }
        guard let name = components.last else { return }
        let parent = try self.parentDirectory(of: components)
        if inode.linkCount > 1 {
            if let first = self.firstPathOfNid[inode.nid] {
                let firstParent = try self.openBeneath(first.dropLast(), flags: pageshare_O_PATH)
                defer { close(firstParent) }
                try self.check(components, "link") { linkat(firstParent, first.last!.cString, parent, name.cString, 0) }
                return
            }
            self.firstPathOfNid[inode.nid] = components
        }
        switch inode.fileType {
        case .regular:
            try self.writeRegular(components, in: parent, inode)
            return
        case .symlink:
            let target = try self.image.symlinkTarget(inode)
            try self.check(components, "symlink") { symlinkat(target.cString, parent, name.cString) }
        case .characterDevice, .blockDevice:
            guard self.isRoot else {
                self.skippedDevices += 1
                return
            }
            let device = pageshare_makedev(inode.deviceMajor, inode.deviceMinor)
            try self.check(components, "mknod") { mknodat(parent, name.cString, mode_t(inode.mode), device) }
        case .fifo:
            try self.check(components, "mkfifo") { mkfifoat(parent, name.cString, 0o600) }
        case .socket:
            try self.check(components, "mknod") { mknodat(parent, name.cString, mode_t(inode.mode), 0) }
        case .directory:
            return
        }
        try self.applyMetadata(toEntry: name, in: parent, components, inode)
    }

    private func writeRegular(_ components: [[UInt8]], in parent: Int32, _ inode: Inode) throws {
        // Created with its final permission bits (the umask is 0 while extracting), so that only set-id and
        // sticky bits, which chown clears, need a chmod afterwards.
        let raw = openat(
            parent, components.last!.cString, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
            mode_t(inode.permissions & 0o777))
        guard raw >= 0 else { throw self.error(components, "open") }
        let descriptor = FileDescriptor(rawValue: raw)
        defer { try? descriptor.close() }
        // Chunks of zeros are left as holes and the size set at the end, so that a sparse file (a 5 GiB
        // one in the fixtures) stays sparse on the host.
        var offset: Int64 = 0
        var written: Int64 = 0
        try self.image.readSequentially(inode, using: self.buffer, context: self.context) { chunk in
            defer { offset += Int64(chunk.count) }
            if memcmp(chunk.baseAddress!, self.zeros.baseAddress!, chunk.count) == 0 { return }
            do {
                _ = try descriptor.writeAll(toAbsoluteOffset: offset, chunk)
                written = offset + Int64(chunk.count)
            } catch let error as Errno {
                throw HostError(path: self.display(components), operation: "write", errno: error.rawValue)
            }
        }
        if written < Int64(inode.size) {
            try self.check(components, "ftruncate") { ftruncate(raw, off_t(inode.size)) }
        }
        try self.applyMetadata(to: raw, components, inode, modeIsSet: inode.permissions & 0o7000 == 0)
    }

    /// Owner (root only), xattrs (root only), mode (unless `modeIsSet`) and mtime of an open file or
    /// directory, in that order: chown clears set-id bits, so the mode comes after it.
    private func applyMetadata(
        to descriptor: Int32, _ components: [[UInt8]], _ inode: Inode, modeIsSet: Bool = false
    ) throws {
        if self.isRoot {
            try self.check(components, "fchown") { fchown(descriptor, inode.uid, inode.gid) }
            for xattr in try self.image.xattrs(of: inode) {
                try self.check(components, "setxattr \(xattr.nameString)") {
                    xattr.value.withUnsafeBytes {
                        fsetxattr(descriptor, xattr.name.cString, $0.baseAddress, $0.count, 0)
                    }
                }
            }
        }
        if !modeIsSet {
            try self.check(components, "fchmod") { fchmod(descriptor, mode_t(inode.permissions)) }
        }
        var times = Self.times(inode)
        try self.check(components, "futimens") { futimens(descriptor, &times) }
    }

    /// The same for an entry that cannot be opened for writing (symlink, device, FIFO, socket): by name in
    /// its parent, never following a symlink. Xattrs go through `/proc/self/fd/N/NAME`, the parent pinned
    /// by its descriptor (no `fsetxattrat` exists).
    private func applyMetadata(
        toEntry name: [UInt8], in parent: Int32, _ components: [[UInt8]], _ inode: Inode
    ) throws {
        if self.isRoot {
            try self.check(components, "lchown") {
                fchownat(parent, name.cString, inode.uid, inode.gid, AT_SYMLINK_NOFOLLOW)
            }
            let pinned = Array("/proc/self/fd/\(parent)/".utf8) + name
            for xattr in try self.image.xattrs(of: inode) {
                try self.check(components, "setxattr \(xattr.nameString)") {
                    xattr.value.withUnsafeBytes {
                        lsetxattr(pinned.cString, xattr.name.cString, $0.baseAddress, $0.count, 0)
                    }
                }
            }
        }
        if inode.fileType != .symlink {
            try self.check(components, "chmod") { fchmodat(parent, name.cString, mode_t(inode.permissions), 0) }
        }
        var times = Self.times(inode)
        try self.check(components, "utimensat") { utimensat(parent, name.cString, &times, AT_SYMLINK_NOFOLLOW) }
    }

    private static func times(_ inode: Inode) -> [timespec] {
        let time = timespec(tv_sec: Int(inode.mtime), tv_nsec: Int(inode.mtimeNanoseconds))
        return [time, time]
    }

    // MARK: Directories beneath the destination

    /// The descriptor of the directory holding `components`' last entry (owned by ``openChain``).
    private func parentDirectory(of components: [[UInt8]]) throws -> Int32 {
        let parent = components.dropLast()
        var kept = 0
        while kept < self.openChain.count, kept < parent.count,
            self.openChain[kept].name == parent[parent.startIndex + kept]
        {
            kept += 1
        }
        while self.openChain.count > kept { close(self.openChain.removeLast().descriptor) }
        for component in parent.dropFirst(kept) {
            let descriptor = try self.openComponent(
                component, in: self.openChain.last?.descriptor ?? self.root, pageshare_O_PATH)
            self.openChain.append((component, descriptor))
        }
        return self.openChain.last?.descriptor ?? self.root
    }

    /// Opens the directory `components` beneath the destination with its own descriptor, for `body`.
    private func withOpenDirectory(_ components: [[UInt8]], _ body: (Int32) throws -> Void) throws {
        let descriptor = try self.openBeneath(components[...], flags: O_RDONLY)
        defer { close(descriptor) }
        try body(descriptor)
    }

    /// Opens `components` from the destination one directory at a time, refusing symlinks and `..`.
    private func openBeneath(_ components: ArraySlice<[UInt8]>, flags: Int32) throws -> Int32 {
        var current = dup(self.root)
        guard current >= 0 else { throw HostError(path: self.destinationName, operation: "dup", errno: errno) }
        for component in components {
            let next: Int32
            do {
                next = try self.openComponent(component, in: current, flags)
            } catch {
                close(current)
                throw error
            }
            close(current)
            current = next
        }
        return current
    }

    private func openComponent(_ name: [UInt8], in directory: Int32, _ flags: Int32) throws -> Int32 {
        guard !name.isEmpty, name != [0x2E], name != [0x2E, 0x2E] else {
            throw HostError(path: self.display([name]), operation: "open", errno: EINVAL)
        }
        let descriptor = openat(directory, name.cString, flags | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { throw HostError(path: self.display([name]), operation: "open", errno: errno) }
        return descriptor
    }

    // MARK: Errors

    private func display(_ components: [[UInt8]]) -> String {
        self.destinationName + "/" + String(decoding: Array(components.joined(separator: [0x2F])), as: UTF8.self)
    }

    private func error(_ components: [[UInt8]], _ operation: String) -> HostError {
        HostError(path: self.display(components), operation: operation, errno: errno)
    }

    private func check(_ components: [[UInt8]], _ operation: String, _ call: () -> Int32) throws {
        if call() != 0 { throw self.error(components, operation) }
    }
}

/// A failed host filesystem call during extraction.
struct HostError: Error, CustomStringConvertible {
    var path: String
    var operation: String
    var errno: Int32

    var description: String { "\(self.operation) \(self.path): \(String(cString: strerror(self.errno)))" }
}

extension Array where Element == UInt8 {
    /// The bytes with a NUL appended, as a C string argument (the array outlives the call it is passed to).
    var cString: [CChar] { self.map { CChar(bitPattern: $0) } + [0] }
}

/// Prints one line on stderr.
func printError(_ message: String) {
    _ = try? FileDescriptor.standardError.writeAll(Array((message + "\n").utf8))
}
