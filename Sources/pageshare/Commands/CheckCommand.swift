import ArgumentParser
import EROFS
import PageCache

/// `pageshare check IMAGE [--device …]`: what `fsck.erofs` does for an operator before attaching.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check an image before attaching it: superblock checksum, every inode, directory and extent, "
            + "and the sha256: ishare fingerprints against the content.",
        discussion: "Exits 0 and prints a summary when the image is sound; exits 1 with the first problems otherwise.")

    @OptionGroup var options: ImageOptions
    @Option(help: "Stop after this many problems.") var maxProblems = 20
    @Flag(help: "Print JSON.") var json = false

    struct Report: Encodable {
        var image: String
        var ok: Bool
        var inodes: Int
        var directories: Int
        var xattrs: Int
        var bytesRead: UInt64
        var fingerprintsVerified: Int
        var problems: [String]
    }

    func run() throws {
        guard self.maxProblems > 0 else { throw ValidationError("--max-problems must be at least 1") }
        let image = try self.options.open()
        let checked = image.checkAll(maximumProblems: self.maxProblems) {
            try ContentDigest.verifyFingerprint(image, $0)
        }
        let report = Report(
            image: self.options.image, ok: checked.problems.isEmpty, inodes: checked.inodes,
            directories: checked.directories, xattrs: checked.xattrs, bytesRead: checked.bytesRead,
            fingerprintsVerified: checked.filesVerified, problems: checked.problems.map(\.description))
        if self.json {
            try printJSON(report)
        } else if report.ok {
            print(
                "\(report.image): ok: \(report.inodes) inodes (\(report.directories) directories), "
                    + "\(report.xattrs) xattrs, \(report.bytesRead) bytes of data read, "
                    + "\(report.fingerprintsVerified) fingerprints verified")
        } else {
            printError("\(report.image): \(report.problems.count) problem(s):")
            for problem in report.problems { printError("  \(problem)") }
        }
        if !report.ok { throw ExitCode(1) }
    }
}
