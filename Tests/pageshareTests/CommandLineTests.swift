import EROFS
import EROFSTestSupport
import Foundation
import Testing

@Suite("pageshare inspect, ls, stat, cat")
struct CommandLineTests {
    let image: TestImage
    init() throws { self.image = try TestImage.full(options: []) }

    func json(_ arguments: [String]) throws -> Any {
        let result = try PageShareBinary.run(arguments)
        #expect(result.status == 0, "\(result.error)")
        return try JSONSerialization.jsonObject(with: Data(result.output))
    }

    @Test("--version names the release and the git commit the binary was built from")
    func version() throws {
        let result = try PageShareBinary.run(["--version"])
        let text = String(decoding: result.output, as: UTF8.self)
        #expect(result.status == 0)
        #expect(
            text.range(
                of: #"^pageshare \d+\.\d+\.\d+ \(commit ([0-9a-f]{12}(-dirty)?|unknown)\)\n$"#,
                options: .regularExpression) != nil, "\(text)")
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        if let git = which("git"), let head = try? run(git, ["-C", root, "rev-parse", "--short=12", "HEAD"]),
            head.status == 0
        {
            let commit = String(decoding: head.output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(text.contains("(commit \(commit)"), "built from \(commit): \(text)")
        }
    }

    @Test("share-report sets whole files, aligned pages and content-defined chunks side by side")
    func shareReportBySharingUnit() throws {
        let library = PseudoRandomBytes.make(1 << 20, seed: 9)
        let first = try TestImage(options: []) { try TestTree.write($0 + "/lib.so", library) }
        defer { first.remove() }
        // The second version: the same library shifted by an inserted header, as a rebuild does.
        let second = try TestImage(options: []) {
            try TestTree.write($0 + "/lib.so", PseudoRandomBytes.make(100, seed: 2) + library)
        }
        defer { second.remove() }
        let report = try #require(try self.json(["share-report", "--json", first.path, second.path]) as? [String: Any])
        let sharing = try #require(report["sharing"] as? [String: Any])
        let total = try #require(sharing["fileBytes"] as? Int)
        #expect(total == 2 * library.count + 100)
        #expect(sharing["wholeFileUniqueBytes"] as? Int == total, "no whole file is shared")
        #expect(sharing["alignedPageUniqueBytes"] as? Int == total, "no aligned page survives the shift")
        let chunked = try #require(sharing["chunkUniqueBytes"] as? Int)
        #expect(chunked < library.count + library.count / 20, "\(chunked) of \(total) bytes held as chunks")
        #expect(sharing["chunkAverageBytes"] as? Int == 4096)
    }

    @Test func inspectReportsFeaturesAndCounts() throws {
        defer { self.image.remove() }
        let report = try #require(try self.json(["inspect", self.image.path, "--json"]) as? [String: Any])
        #expect(report["blockSize"] as? Int == 4096)
        #expect((report["compatFeatures"] as? [String])?.contains("sb_csum") == true)
        let counts = try #require(report["counts"] as? [String: Int])
        #expect(counts["regular"] == 3013)
        #expect(counts["symlink"] == 6)
        let text = try PageShareBinary.run(["inspect", self.image.path])
        #expect(String(decoding: text.output, as: UTF8.self).contains("block size:         4096"))
    }

    @Test func lsListsLongAndRecursive() throws {
        defer { self.image.remove() }
        let plain = String(decoding: try PageShareBinary.run(["ls", self.image.path]).output, as: UTF8.self)
        #expect(plain.split(separator: "\n").contains("hello.txt"))
        let long = String(decoding: try PageShareBinary.run(["ls", "-l", self.image.path, "/"]).output, as: UTF8.self)
        #expect(long.contains("-rwsr-xr-x 1 "))
        #expect(long.contains(" link-relative -> hello.txt"))
        let recursive = String(
            decoding: try PageShareBinary.run(["ls", "-R", self.image.path, "dir"]).output, as: UTF8.self)
        #expect(recursive.split(separator: "\n").contains("dir/sub/deeper/leaf"))
        let rows = try #require(try self.json(["ls", self.image.path, "many", "--json"]) as? [[String: Any]])
        #expect(rows.count == 3000)
    }

    @Test func statShowsXattrsAndLayout() throws {
        defer { self.image.remove() }
        let stat = try #require(try self.json(["stat", self.image.path, "hello.txt", "--json"]) as? [String: Any])
        #expect(stat["size"] as? Int == 17)
        #expect(stat["mode"] as? String == "0644")
        #expect(stat["mtime"] as? Int == 981_173_106)
        #expect(stat["mtimeNanoseconds"] as? Int == 789_000_000)
        #expect(stat["nlink"] as? Int == 2)
        let xattrs = try #require(stat["xattrs"] as? [String: String])
        #expect(xattrs["user.comment"] == Data("a comment".utf8).base64EncodedString())
        let link = try #require(try self.json(["stat", self.image.path, "link-relative", "--json"]) as? [String: Any])
        #expect(link["symlinkTarget"] as? String == "hello.txt")
    }

    @Test func catWritesRanges() throws {
        defer { self.image.remove() }
        let source = Array(try Data(contentsOf: URL(fileURLWithPath: self.image.source + "/large.bin")))
        #expect(try PageShareBinary.run(["cat", self.image.path, "large.bin"]).output == source)
        let slice = try PageShareBinary.run([
            "cat", self.image.path, "large.bin", "--offset", "4000", "--length", "9000",
        ])
        #expect(slice.output == Array(source[4000..<13000]))
        let tail = try PageShareBinary.run(["cat", self.image.path, "large.bin", "--offset", "299990"])
        #expect(tail.output == Array(source[299_990...]))
        #expect(
            try PageShareBinary.run(["cat", self.image.path, "link-relative"]).output
                == Array("hello, pageshare\n".utf8))
    }

    @Test func errorsAreOneLineOnStderr() throws {
        defer { self.image.remove() }
        let cases: [[String]] = [
            ["cat", self.image.path, "no/such/file"],
            ["cat", self.image.path, "dir"],
            ["ls", self.image.path, "loop-a"],
            ["inspect", self.image.directory.path + "/missing.img"],
            ["inspect", self.image.source + "/hello.txt"],
        ]
        for arguments in cases {
            let result = try PageShareBinary.run(arguments)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.output.isEmpty, "\(arguments)")
            let lines = result.error.split(separator: "\n")
            #expect(lines.count == 1, "\(arguments): \(result.error)")
            #expect(!result.error.contains("Fatal error"), "\(arguments)")
        }
    }

    @Test func shareReportCountsSharedContentOnce() throws {
        defer { self.image.remove() }
        let second = try TestImage(options: ["-zlz4"]) { root in
            try TestTree.write(
                root + "/copy-of-large",
                Array(try Data(contentsOf: URL(fileURLWithPath: self.image.source + "/large.bin"))))
            try TestTree.write(root + "/own", Array("only here\n".utf8))
        }
        defer { second.remove() }
        let report = try #require(
            try self.json(["share-report", "--json", self.image.path, second.path]) as? [String: Any])
        #expect(report["residentOverUnique"] as? Double == 1.0)
        #expect((report["savedBytes"] as? Int ?? 0) >= 300_000)
        let bad = try PageShareBinary.run(["share-report", "--mode", "none", self.image.path])
        #expect(bad.status != 0)
    }

    /// A file that is not an image: every command names the file and says what is wrong, without echoing
    /// any of its bytes.
    @Test func aFileThatIsNotAnImageIsNamedPlainly() throws {
        defer { self.image.remove() }
        let secret = self.image.directory.path + "/secret.key"
        try TestTree.write(secret, Array(String(repeating: "SECRETSECRET", count: 400).utf8))
        for command in [["inspect"], ["ls"], ["stat"], ["cat"], ["extract"]] {
            let arguments = command + [secret] + (command == ["extract"] ? [self.image.directory.path + "/x"] : [])
            let result = try PageShareBinary.run(arguments + (["stat", "cat"].contains(command[0]) ? ["a"] : []))
            #expect(result.status != 0)
            #expect(
                result.error.contains("\(secret): not an EROFS image (no EROFS magic at offset 1024)"),
                "\(result.error)")
            #expect(!result.error.contains("SECRET") && !result.error.contains("0x"), "\(result.error)")
        }
    }

    @Test func shareReportInXattrModeSaysWhenImagesHaveNoFingerprints() throws {
        defer { self.image.remove() }
        let result = try PageShareBinary.run(["share-report", self.image.path, self.image.path, "--mode", "xattr"])
        #expect(result.status == 1)
        #expect(result.error.contains("have no ishare fingerprint xattrs") && result.error.contains("--mode digest"))
        #expect(!result.error.contains("Usage"), "\(result.error)")
    }
}
