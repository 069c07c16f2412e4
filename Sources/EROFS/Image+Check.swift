/// What ``Image/checkAll(maximumBytesPerFile:maximumProblems:verifyingFile:)`` visited and found.
public struct CheckReport: Sendable {
    public var inodes = 0
    public var directories = 0
    public var xattrs = 0
    public var bytesRead: UInt64 = 0
    /// Files whose content was checked by the caller's verifier (ishare fingerprints).
    public var filesVerified = 0
    /// What was wrong, in walk order, at most the number asked for.
    public var problems: [CheckProblem] = []
}

/// One thing wrong with an image: the path it was met at and the reader's error.
public struct CheckProblem: Sendable, CustomStringConvertible {
    /// The path inside the image (`/` for the root).
    public let path: String
    public let error: EROFSError

    public var description: String { "\(self.path): \(self.error)" }
}

extension Image {
    /// Reads everything reachable and throws the first `EROFSError` found (the fuzzer's and the tests'
    /// form of ``checkAll(maximumBytesPerFile:maximumProblems:verifyingFile:)``).
    public func check(maximumBytesPerFile: UInt64 = .max) throws -> CheckReport {
        let report = self.checkAll(maximumBytesPerFile: maximumBytesPerFile, maximumProblems: 1)
        if let first = report.problems.first { throw first.error }
        return report
    }

    /// Reads everything reachable, the job `fsck.erofs` does: every inode, directory entry, xattr, symlink
    /// target and data byte (every extent decoded). A broken inode or directory is recorded and skipped
    /// with its subtree, and the check goes on; the superblock (and its checksum) was checked at open.
    ///
    /// - Parameters:
    ///   - maximumBytesPerFile: stop reading a file's data after this many bytes (the fuzzer bounds its work
    ///     with it; the default reads everything).
    ///   - maximumProblems: how many problems to keep; the check stops after that many.
    ///   - verifyingFile: called for each regular file after its data read cleanly; an `EROFSError` it
    ///     throws is recorded as the file's problem (PageShare checks ishare fingerprints with it).
    public func checkAll(
        maximumBytesPerFile: UInt64 = .max, maximumProblems: Int = 20,
        verifyingFile: ((Inode) throws -> Bool)? = nil
    ) -> CheckReport {
        var report = CheckReport()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { buffer.deallocate() }
        let context = ReadContext()
        struct Enough: Error {}
        func record(_ path: [UInt8], _ error: EROFSError) throws {
            report.problems.append(CheckProblem(path: "/" + String(decoding: path, as: UTF8.self), error: error))
            if report.problems.count >= maximumProblems { throw Enough() }
        }
        do {
            try self.walk(recovering: record) { _, inode in
                report.inodes += 1
                report.xattrs += try self.xattrs(of: inode).count
                switch inode.fileType {
                case .directory:
                    report.directories += 1
                case .symlink:
                    report.bytesRead += UInt64(try self.symlinkTarget(inode).count)
                case .regular:
                    report.bytesRead += try self.readSequentially(
                        inode, range: 0..<min(inode.size, maximumBytesPerFile), using: buffer, context: context
                    ) { _ in }
                    if let verifyingFile, try verifyingFile(inode) { report.filesVerified += 1 }
                default:
                    break
                }
            }
        } catch let error as EROFSError {
            // The root itself could not be read.
            report.problems.append(CheckProblem(path: "/", error: error))
        } catch {
            // Enough problems kept.
        }
        return report
    }
}
