import Foundation
import Glibc

/// Runs `executable` with `arguments` (and `input` on stdin, if given); returns exit status, stdout and stderr.
@discardableResult
public func run(
    _ executable: String, _ arguments: [String], input: String? = nil
) throws -> (status: Int32, output: [UInt8], error: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let output = Pipe()
    let error = Pipe()
    process.standardOutput = output
    process.standardError = error
    let stdin = input.map { _ in Pipe() }
    if let stdin { process.standardInput = stdin }
    try process.run()
    if let stdin, let input {
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
    }
    // Drain both pipes concurrently so a chatty child cannot block on a full pipe.
    nonisolated(unsafe) var errorData = Data()
    let errorReader = Thread { errorData = error.fileHandleForReading.readDataToEndOfFile() }
    errorReader.start()
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !errorReader.isFinished { usleep(1000) }
    return (process.terminationStatus, Array(outputData), String(decoding: errorData, as: UTF8.self))
}

/// A TCP port free on 127.0.0.1 right now (bound to port 0, then released).
public func freeLoopbackPort() -> Int? {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socket >= 0 else { return nil }
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
            guard bind(socket, pointer, length) == 0 else { return -1 }
            return getsockname(socket, pointer, &length)
        }
    }
    return bound == 0 ? Int(UInt16(bigEndian: address.sin_port)) : nil
}

/// Finds `name` on PATH (and in /usr/sbin, /sbin, where Debian puts erofs-utils and mount helpers).
public func which(_ name: String) -> String? {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/sbin:/usr/bin:/bin"
    for directory in path.split(separator: ":") {
        let candidate = "\(directory)/\(name)"
        if access(candidate, X_OK) == 0 { return candidate }
    }
    return nil
}

/// A fresh directory under the system temp dir, removed by ``remove()``.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(_ label: String = "pageshare") throws {
        var template = Array("\(NSTemporaryDirectory())/\(label)-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw HostCallError(call: "mkdtemp", path: label, errno: errno)
        }
        self.path = String(cString: made)
    }

    public func remove() {
        _ = try? run("/bin/rm", ["-rf", self.path])
    }
}

/// Debian's erofs-utils 1.5: `mkfs.erofs` makes test images, `fsck.erofs --extract` is an oracle.
public enum ErofsUtils {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String {
            "mkfs.erofs/fsck.erofs not found: install Debian's erofs-utils (`make deps` does)"
        }
    }

    /// Builds an image of `source` at `image` with extra mkfs `options`.
    public static func mkfs(_ image: String, from source: String, options: [String] = []) throws {
        guard let mkfs = which("mkfs.erofs") else { throw Missing() }
        let result = try run(mkfs, ["--quiet"] + options + [image, source])
        guard result.status == 0 else {
            throw ToolFailure(tool: "mkfs.erofs \(options.joined(separator: " "))", message: result.error)
        }
    }

    /// Extracts `image` into `directory` with `fsck.erofs --extract`.
    public static func fsckExtract(_ image: String, to directory: String, devices: [String] = []) throws {
        guard let fsck = which("fsck.erofs") else { throw Missing() }
        let preserve = geteuid() == 0 ? "--preserve" : "--preserve-perms"
        let result = try run(fsck, devices.map { "--device=\($0)" } + [preserve, "--extract=\(directory)", image])
        guard result.status == 0 else { throw ToolFailure(tool: "fsck.erofs", message: result.error) }
    }
}

/// A helper tool failed.
public struct ToolFailure: Error, CustomStringConvertible {
    public var tool: String
    public var message: String
    public var description: String { "\(self.tool) failed: \(self.message)" }
}

/// The kernel as the correctness oracle: `mount -t erofs -o ro,loop`. Needs root and a kernel with EROFS.
public enum KernelMount {
    /// Whether this process can mount EROFS images (root, and a probe mount succeeded).
    public static let isAvailable: Bool = {
        guard geteuid() == 0, which("mount") != nil, which("mkfs.erofs") != nil else { return false }
        guard let directory = try? TemporaryDirectory("probe") else { return false }
        defer { directory.remove() }
        let source = directory.path + "/src"
        mkdir(source, 0o755)
        guard (try? ErofsUtils.mkfs(directory.path + "/probe.img", from: source)) != nil else { return false }
        mkdir(directory.path + "/mnt", 0o755)
        guard
            let mounted = try? run(
                which("mount")!,
                [
                    "-t", "erofs", "-o", "ro,loop", directory.path + "/probe.img",
                    directory.path + "/mnt",
                ]), mounted.status == 0
        else { return false }
        _ = try? run(which("umount")!, [directory.path + "/mnt"])
        return true
    }()
}

extension KernelMount {
    /// Mounts `image` read-only (its extra devices attached to loop devices, `-o device=`) at a fresh
    /// directory, calls `body` with the mount point, and unmounts.
    public static func withMount<T>(
        _ image: String, devices: [String] = [], _ body: (String) throws -> T
    ) throws -> T {
        var loops: [String] = []
        defer { for loop in loops { _ = try? run(which("losetup")!, ["-d", loop]) } }
        for device in devices {
            let result = try run(which("losetup")!, ["-f", "--show", "-r", device])
            guard result.status == 0 else { throw ToolFailure(tool: "losetup", message: result.error) }
            loops.append(String(decoding: result.output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let directory = try TemporaryDirectory("mnt")
        defer { directory.remove() }
        let options = (["ro", "loop"] + loops.map { "device=\($0)" }).joined(separator: ",")
        let result = try run(which("mount")!, ["-t", "erofs", "-o", options, image, directory.path])
        guard result.status == 0 else { throw ToolFailure(tool: "mount", message: result.error) }
        defer { _ = try? run(which("umount")!, [directory.path]) }
        return try body(directory.path)
    }
}
