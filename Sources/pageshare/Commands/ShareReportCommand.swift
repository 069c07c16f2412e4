import ArgumentParser
import EROFS
import Foundation
import PageCache

/// `pageshare share-report IMAGE... [--mode digest|xattr] [--sharing file|chunk] [--json]`: reads every file
/// of the images through one shared cache in one domain and reports what sharing saves.
struct ShareReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "share-report",
        abstract: "Read every file of several images through one shared cache and report the bytes sharing saves.")

    @Argument(help: "EROFS images, attached to one fingerprint domain.") var images: [String]
    @Option(help: "How files are matched: digest (sha256 computed here) or xattr (the images' ishare xattrs).")
    var mode: String = "digest"
    @Option(help: "Cache page size in bytes.") var pageSize: Int = 4096
    @Option(help: "What the cache shares: file (equal files) or chunk (equal content-defined chunks).")
    var sharing: SharingUnit = .file
    @Option(help: "Average size of the content-defined chunks, a power of two from 1024 (min 1/4, max 4x).")
    var chunkSize: Int = 4096
    @Flag(help: "Print JSON.") var json = false

    struct Report: Encodable {
        var images: Int
        var files: Int
        var logicalBytes: Int
        var residentBytes: Int
        var savedBytes: Int
        var chunkSavedBytes: Int
        var uniqueContentBytes: Int
        var residentOverUnique: Double
        /// What each way of sharing would hold once, of `fileBytes` (the files' exact sizes, summed).
        var sharing: Sharing
    }

    /// Bytes held once by each unit of sharing, side by side: whole files (equal content, what the cache
    /// shares today), 4 KiB-aligned pages (equal pages at equal offsets), content-defined chunks (FastCDC,
    /// XXH3-128 identities).
    struct Sharing: Encodable {
        var fileBytes: Int
        var wholeFileUniqueBytes: Int
        var alignedPageUniqueBytes: Int
        var chunkUniqueBytes: Int
        var chunkAverageBytes: Int
        var chunks: Int
        var uniqueChunks: Int
    }

    func run() async throws {
        guard let fingerprintMode = FingerprintMode(rawValue: self.mode), fingerprintMode != .none else {
            throw ValidationError("--mode must be digest or xattr")
        }
        let opened = try self.images.map { try Image(path: $0) }
        if fingerprintMode == .xattr {
            let without = zip(self.images, opened).filter { $0.1.superBlock.ishareXattrPrefixID == nil }.map(\.0)
            guard without.isEmpty else {
                // A report of 0 bytes saved would say the images share nothing; the truth is that xattr mode
                // has nothing to compare them by.
                throw CommandFailure(
                    description:
                        "--mode xattr: \(without.joined(separator: ", ")) \(without.count == 1 ? "has" : "have") no ishare "
                        + "fingerprint xattrs (mkfs.erofs --xattr-inode-digest); use --mode digest")
            }
        }
        var pages = 0
        for image in opened {
            try image.walk { _, inode in
                if inode.fileType == .regular { pages += (Int(inode.size) + self.pageSize - 1) / self.pageSize }
            }
        }
        guard self.chunkSize >= 1024, self.chunkSize & (self.chunkSize - 1) == 0 else {
            throw ValidationError("--chunk-size must be a power of two from 1024")
        }
        // A budget that holds every page even with uneven stripes: the report measures sharing, not eviction.
        let cache = try SharedPageCache(
            configuration: .init(
                budgetBytes: (pages + pages / 4 + 64 * 64) * self.pageSize, pageSize: self.pageSize,
                sharing: self.sharing, chunkAverageBytes: self.chunkSize))

        let domain = try TrustDomain("report")
        for (index, image) in opened.enumerated() {
            try cache.attach(image, id: "image-\(index)", domain: domain, mode: fingerprintMode)
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        var files = 0
        var unique: [[UInt8]: Int] = [:]
        var uniqueFiles: [[UInt8]: Int] = [:]
        var alignedPages: Set<ChunkIdentity> = []
        var chunks: Set<ChunkIdentity> = []
        var sharing = Sharing(
            fileBytes: 0, wholeFileUniqueBytes: 0, alignedPageUniqueBytes: 0, chunkUniqueBytes: 0,
            chunkAverageBytes: self.chunkSize, chunks: 0, uniqueChunks: 0)
        let chunker = ContentDefinedChunker(averageBytes: self.chunkSize)
        let countChunk = { (chunk: UnsafeRawBufferPointer) in
            sharing.chunks += 1
            if chunks.insert(ChunkIdentity(of: chunk)).inserted { sharing.chunkUniqueBytes += chunk.count }
        }
        for (index, image) in opened.enumerated() {
            var inodes: [Inode] = []
            try image.walk { _, inode in if inode.fileType == .regular { inodes.append(inode) } }
            for inode in inodes {
                files += 1
                var offset: UInt64 = 0
                while offset < inode.size {
                    let count = try await cache.read(imageID: "image-\(index)", inode: inode, at: offset, into: buffer)
                    guard count > 0 else { break }
                    offset += UInt64(count)
                    // Reads start at multiples of 1 MiB, so 4 KiB pages line up within each.
                    let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
                    for start in stride(from: 0, to: count, by: 4096) {
                        let page = UnsafeRawBufferPointer(rebasing: bytes[start..<min(count, start + 4096)])
                        if alignedPages.insert(ChunkIdentity(of: page)).inserted {
                            sharing.alignedPageUniqueBytes += page.count
                        }
                    }
                    // Each read is one of the cache's 1 MiB chunking windows: cut it as the cache does.
                    chunker.forEachChunk(of: bytes, countChunk)
                }
                sharing.fileBytes += Int(inode.size)
                let pages = (Int(inode.size) + self.pageSize - 1) / self.pageSize * self.pageSize
                // Hashed here independently of the cache, so that the ratio checks the cache, not itself.
                let key = try ContentDigest.sha256(image, inode) + Self.sizeKey(inode.size)
                unique[key] = pages
                uniqueFiles[key] = Int(inode.size)
            }
        }
        sharing.wholeFileUniqueBytes = uniqueFiles.values.reduce(0, +)
        sharing.uniqueChunks = chunks.count
        let statistics = cache.statistics(for: domain)
        if statistics.evictions > 0 {
            printError("pageshare: \(statistics.evictions) pages were evicted; the report undercounts resident bytes")
        }
        let uniqueBytes = unique.values.reduce(0, +)
        let report = Report(
            images: opened.count, files: files, logicalBytes: statistics.logicalReadBytes,
            residentBytes: statistics.residentBytes, savedBytes: statistics.savedBytes,
            chunkSavedBytes: statistics.chunkSavedBytes,
            uniqueContentBytes: uniqueBytes,
            residentOverUnique: uniqueBytes == 0 ? 0 : Double(statistics.residentBytes) / Double(uniqueBytes),
            sharing: sharing)
        if self.json {
            try printJSON(report)
            return
        }
        print("images:              \(report.images)")
        print("files:               \(report.files)")
        print("bytes read:          \(report.logicalBytes)")
        print("resident:            \(report.residentBytes)")
        print("saved by sharing:    \(report.savedBytes) by whole files, \(report.chunkSavedBytes) more by chunks")
        print("unique content:      \(report.uniqueContentBytes) (page-rounded)")
        print("resident / unique:   \(report.residentOverUnique)")
        print("")
        print("sharing by unit      held once (bytes)   saves (of \(sharing.fileBytes) file bytes)")
        for (name, held) in [
            ("whole files", sharing.wholeFileUniqueBytes), ("aligned 4 KiB pages", sharing.alignedPageUniqueBytes),
            ("chunks (~\(self.chunkSize) B)", sharing.chunkUniqueBytes),
        ] {
            let saved = sharing.fileBytes == 0 ? 0 : Double(sharing.fileBytes - held) / Double(sharing.fileBytes)
            let label = name.padding(toLength: 21, withPad: " ", startingAt: 0)
            let bytes = String(held).padding(toLength: 20, withPad: " ", startingAt: 0)
            print("\(label)\(bytes)\(String(format: "%.1f", saved * 100)) %")
        }
        print("chunks:              \(sharing.chunks), \(sharing.uniqueChunks) distinct")
    }

    private static func sizeKey(_ size: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: size >> ($0 * 8)) }
    }
}
