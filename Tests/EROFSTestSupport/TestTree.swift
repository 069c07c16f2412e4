import CHostCalls
import Foundation
import Glibc

/// Writes the trees test images are built from.
public enum TestTree {
    /// (mkfs.erofs 1.5 fails on 255-byte names, so the longest name here is 254 bytes.)
    /// A tree with every file type the format has and the awkward cases: empty, one-byte, block-sized and
    /// multi-block files, a 3000-entry directory, long and absolute symlinks, hard links, xattrs (user.* always;
    /// trusted.* and security.* as root), a FIFO, and device nodes as root. Returns the files written.
    public static func writeFull(at root: String, largeFileBytes: Int = 300_000) throws {
        try make(root)
        try write(root + "/empty", [])
        try write(root + "/one", [0x41])
        try write(root + "/hello.txt", Array("hello, pageshare\n".utf8))
        try write(root + "/block4k", pattern(4096, seed: 1))
        try write(root + "/block4k-plus1", pattern(4097, seed: 2))
        try write(root + "/large.bin", pattern(largeFileBytes, seed: 3))
        try write(root + "/tail.bin", pattern(3 * 4096 + 1234, seed: 4))
        // Compressible text, so that compressed images (-z) really hold a compressed inode.
        try write(
            root + "/compressible.txt",
            Array((0..<6000).map { "line \($0 % 97) of a compressible file\n" }.joined().utf8))
        try make(root + "/dir/sub/deeper")
        try write(root + "/dir/sub/deeper/leaf", Array("leaf\n".utf8))
        try make(root + "/many")
        for index in 0..<3000 {
            try write(root + "/many/entry-\(index)", Array("\(index)\n".utf8))
        }
        try write(root + "/names/with space", Array("space\n".utf8), makingParent: true)
        try write(root + "/names/ünïcödé", Array("utf8\n".utf8))
        try write(root + "/names/" + String(repeating: "n", count: 254), Array("long name\n".utf8))
        try symlink("hello.txt", root + "/link-relative")
        try symlink("/dir/sub/deeper", root + "/link-absolute")
        try symlink(String(repeating: "x/", count: 1500) + "end", root + "/link-long")
        try symlink("missing-target", root + "/link-dangling")
        try symlink("loop-b", root + "/loop-a")
        try symlink("loop-a", root + "/loop-b")
        guard link(root + "/hello.txt", root + "/dir/hardlink") == 0 else {
            throw HostCallError(call: "link", path: root, errno: errno)
        }
        guard mkfifo(root + "/fifo", 0o640) == 0 else { throw HostCallError(call: "mkfifo", path: root, errno: errno) }
        chmod(root + "/one", 0o4755)
        chmod(root + "/dir/sub", 0o2750)
        try setXattr(root + "/hello.txt", "user.comment", Array("a comment".utf8))
        try setXattr(root + "/hello.txt", "user.empty", [])
        try setXattr(root + "/dir", "user.shared", Array("same value".utf8))
        try setXattr(root + "/large.bin", "user.shared", Array("same value".utf8))
        try setXattr(root + "/tail.bin", "user.big", pattern(1000, seed: 9))
        if geteuid() == 0 {
            try setXattr(root + "/hello.txt", "trusted.overlay.opaque", Array("y".utf8))
            try setXattr(
                root + "/large.bin", "security.capability",
                [1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
            guard mknod(root + "/char-dev", S_IFCHR | 0o600, pageshare_makedev(1, 3)) == 0,
                mknod(root + "/block-dev", S_IFBLK | 0o600, pageshare_makedev(259, 300)) == 0
            else { throw HostCallError(call: "mknod", path: root, errno: errno) }
            lchown(root + "/dir/sub", 1234, 5678)
            lchown(root + "/link-relative", 42, 43)
            lchown(root + "/block4k", 70000, 80000)
        }
        var times = [
            timespec(tv_sec: 981_173_106, tv_nsec: 789_000_000), timespec(tv_sec: 981_173_106, tv_nsec: 789_000_000),
        ]
        utimensat(AT_FDCWD, root + "/hello.txt", &times, 0)
        times = [timespec(tv_sec: 4_102_444_800, tv_nsec: 1), timespec(tv_sec: 4_102_444_800, tv_nsec: 1)]
        utimensat(AT_FDCWD, root + "/tail.bin", &times, 0)
    }

    /// Deterministic pseudo-random bytes.
    public static func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }

    public static func write(_ path: String, _ bytes: [UInt8], makingParent: Bool = false) throws {
        if makingParent { try make((path as NSString).deletingLastPathComponent) }
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw HostCallError(call: "create", path: path, errno: errno)
        }
    }

    public static func make(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public static func symlink(_ target: String, _ path: String) throws {
        guard Glibc.symlink(target, path) == 0 else { throw HostCallError(call: "symlink", path: path, errno: errno) }
    }

    public static func setXattr(_ path: String, _ name: String, _ value: [UInt8]) throws {
        let result = value.withUnsafeBytes { lsetxattr(path, name, $0.baseAddress, value.count, 0) }
        guard result == 0 else { throw HostCallError(call: "lsetxattr \(name)", path: path, errno: errno) }
    }
}
