import EROFS

/// JSON bodies of the metadata routes: `stat/{path}` and `dirs/{path}`.
enum MetadataResponses {
    /// One directory entry of a listing.
    struct ListingEntry: Encodable {
        var name: String
        var type: String
        var nid: UInt64
    }

    /// A page of a directory listing; `next` is the `after` value of the following page, absent on the last.
    struct Listing: Encodable {
        var path: String
        var entries: [ListingEntry]
        var next: String?
    }

    /// The entries of `directory` after the name `after` (byte-wise, the on-disk order), at most `limit`.
    static func listing(
        image: Image, directory: Inode, path: String, after: String?, limit: Int
    ) throws -> Listing {
        let afterBytes = after.map { Array($0.utf8) }
        var entries: [ListingEntry] = []
        var more = false
        struct PageFull: Error {}
        do {
            try image.forEachEntry(of: directory) { entry in
                guard !entry.isDotOrDotDot else { return }
                // Entries are sorted byte-wise across blocks, so "after" is a position in the listing.
                if let afterBytes, !afterBytes.lexicographicallyPrecedes(entry.name) { return }
                if entries.count == limit {
                    more = true
                    throw PageFull()
                }
                entries.append(
                    ListingEntry(name: entry.nameString, type: Self.typeName(entry.fileTypeCode), nid: entry.nid))
            }
        } catch is PageFull {}
        return Listing(path: path, entries: entries, next: more ? entries.last?.name : nil)
    }

    /// The `EROFS_FT_*` code as a type name.
    static func typeName(_ code: UInt8) -> String {
        switch code {
        case 1: "regular"
        case 2: "directory"
        case 3: "characterDevice"
        case 4: "blockDevice"
        case 5: "fifo"
        case 6: "socket"
        case 7: "symlink"
        default: "unknown"
        }
    }
}
