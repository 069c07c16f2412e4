import EROFS
import NIOHTTP1

/// The metadata routes, `stat/{path}` and `dirs/{path}`: their JSON bodies, made apart from the responder.
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

    /// The `stat/{path}` body: the path's inode (a symlink itself, not its target) with its xattrs, and its
    /// extents with `?extents=1`.
    static func stat(_ target: RequestTarget, image: Image) throws -> [UInt8] {
        let inode = try image.resolve(target.path, followingFinalSymlink: false)
        let description = try FileDescription(
            path: target.path, inode: inode, image: image, includeXattrs: true,
            includeExtents: target.queryValue("extents") == "1")
        return try JSONBody.encode(description)
    }

    /// The `dirs/{path}` body: a page of the directory's entries after `?after=`, at most `?limit=` of them.
    /// - Throws: ``Problem`` for a bad limit or a path that is not a directory; the image's errors.
    static func listing(_ target: RequestTarget, image: Image, limits: DataPlane.Limits) throws -> [UInt8] {
        var limit = limits.defaultListingLimit
        if let text = target.queryValue("limit") {
            guard let value = Int(text), value > 0, value <= limits.maximumListingLimit else {
                throw Problem.badRequest("limit must be 1-\(limits.maximumListingLimit)")
            }
            limit = value
        }
        let directory = try image.resolve(target.path)
        guard directory.fileType == .directory else {
            throw Problem("not-a-directory", .notFound, "\(target.path) is not a directory; read it at files/")
        }
        let listing = try Self.listing(
            image: image, directory: directory, path: target.path, after: target.queryValue("after"), limit: limit)
        return try JSONBody.encode(listing)
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
