/// A data-API request target, split and validated: `/v1/images/{image}/{files|stat|dirs}/{path}?query`.
///
/// The image id and the path are percent-decoded exactly once. Paths never reach the host filesystem: they
/// are resolved inside the image only.
struct RequestTarget: Equatable {
    enum Resource: String { case files, stat, dirs }

    var image: String
    var resource: Resource
    /// The path inside the image, always starting with `/`, with `.` and empty components removed.
    var path: String
    var query: [(name: String, value: String)]

    static func == (lhs: RequestTarget, rhs: RequestTarget) -> Bool {
        lhs.image == rhs.image && lhs.resource == rhs.resource && lhs.path == rhs.path
            && lhs.query.elementsEqual(rhs.query, by: { $0 == $1 })
    }

    /// Longest accepted path inside an image, in bytes after decoding (Linux `PATH_MAX`).
    static let maximumPathBytes = 4096
    /// Longest accepted path component (EROFS names are at most 255 bytes).
    static let maximumNameBytes = 255

    /// Why a target was refused.
    enum Failure: Error, Equatable {
        /// Not a data-API route (404).
        case noRoute
        /// A bad path, image id or percent-encoding (400), with a reason.
        case badRequest(String)
    }

    /// A run of a target's bytes.
    typealias Bytes = Slice<UnsafeBufferPointer<UInt8>>

    /// Parses `uri` (the request line's target). Rejects NUL bytes, bad percent-encoding, `..` that would
    /// leave the image root, over-long paths and names.
    static func parse(_ uri: String) throws(Failure) -> RequestTarget {
        // Over the target's UTF-8 in place, with integer offsets: this runs for every data request.
        var uri = uri
        return try uri.withUTF8 { bytes in Result { () throws(Failure) in try Self.parse(bytes: bytes[...]) } }.get()
    }

    private static func parse(bytes all: Bytes) throws(Failure) -> RequestTarget {
        var bytes = all
        var queryBytes = all[all.endIndex...]
        if let mark = all.firstIndex(of: UInt8(ascii: "?")) {
            queryBytes = all[(mark + 1)...]
            bytes = all[..<mark]
        }
        let prefix: StaticString = "/v1/images/"
        guard Self.raw(bytes).hasPrefix(prefix) else { throw .noRoute }
        var rest = bytes.dropFirst(prefix.utf8CodeUnitCount)
        guard let slash = rest.firstIndex(of: UInt8(ascii: "/")) else { throw .noRoute }
        let image = try Self.decode(rest[..<slash], what: "image id")
        guard !image.isEmpty, image.utf8.count <= 255, !image.utf8.contains(where: { $0 < 0x21 || $0 == 0x7F })
        else { throw .badRequest("image id must be 1-255 printable characters") }
        rest = rest[(slash + 1)...]
        let resourceEnd = rest.firstIndex(of: UInt8(ascii: "/")) ?? rest.endIndex
        guard let resource = Self.resource(rest[..<resourceEnd]) else { throw .noRoute }
        let rawPath = resourceEnd < rest.endIndex ? rest[(resourceEnd + 1)...] : rest[resourceEnd...]
        // A plain path is the target's own bytes from the `/` before it: one string, made once.
        let path =
            Self.isNormalPlainPath(rawPath)
            ? String(decoding: rest[resourceEnd...], as: UTF8.self)
            : try Self.normalise(try Self.decodeBytes(rawPath, what: "path"))
        return RequestTarget(image: image, resource: resource, path: path, query: try Self.parseQuery(queryBytes))
    }

    private static func resource(_ name: Bytes) -> Resource? {
        let name = Self.raw(name)
        if name.isEqual(to: "files") { return .files }
        if name.isEqual(to: "stat") { return .stat }
        if name.isEqual(to: "dirs") { return .dirs }
        return nil
    }

    /// `bytes` as raw memory, for the comparisons with fixed text (``ByteComparison``).
    private static func raw(_ bytes: Bytes) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes))
    }

    /// The percent-decoded path segments of an admin-API target after `/v1/admin` (the query is ignored).
    static func adminSegments(_ uri: String) throws(Failure) -> [String] {
        var uri = uri
        return try uri.withUTF8 { bytes in Result { () throws(Failure) in try Self.adminSegments(bytes: bytes[...]) } }
            .get()
    }

    private static func adminSegments(bytes all: Bytes) throws(Failure) -> [String] {
        var bytes = all
        if let mark = bytes.firstIndex(of: UInt8(ascii: "?")) { bytes = bytes[..<mark] }
        let prefix: StaticString = "/v1/admin"
        guard Self.raw(bytes).hasPrefix(prefix) else { throw .noRoute }
        var segments: [String] = []
        for raw in bytes.dropFirst(prefix.utf8CodeUnitCount).split(
            separator: UInt8(ascii: "/"), omittingEmptySubsequences: true)
        {
            let segment = try Self.decode(raw, what: "path segment")
            guard segment.utf8.count <= 255 else { throw .badRequest("a path segment is longer than 255 bytes") }
            segments.append(segment)
        }
        return segments
    }

    /// The value of query parameter `name`, if present.
    func queryValue(_ name: String) -> String? { self.query.first(where: { $0.name == name })?.value }

    private static func parseQuery(_ bytes: Bytes) throws(Failure) -> [(String, String)] {
        guard !bytes.isEmpty else { return [] }
        var result: [(String, String)] = []
        for pair in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = pair.firstIndex(of: UInt8(ascii: "=")) ?? pair.endIndex
            let name = try Self.decode(pair[..<equals], what: "query", plusIsSpace: true)
            let value =
                equals < pair.endIndex
                ? try Self.decode(pair[pair.index(after: equals)...], what: "query", plusIsSpace: true) : ""
            result.append((name, value))
        }
        return result
    }

    /// Whether `raw` (a path after the resource, without its leading `/`) is already what ``normalise(_:)``
    /// would make of it: no escapes, no NUL, no empty, `.` or `..` components, no over-long name or path. The
    /// common case, served without decoding into a copy and splitting.
    private static func isNormalPlainPath(_ raw: Bytes) -> Bool {
        guard !raw.isEmpty, raw.count < Self.maximumPathBytes else { return false }
        var componentLength = 0
        var dots = 0
        for byte in raw {
            switch byte {
            case UInt8(ascii: "/"):
                guard componentLength > 0, dots != componentLength || dots > 2 else { return false }
                componentLength = 0
                dots = 0
                continue
            case UInt8(ascii: "%"), 0: return false
            case UInt8(ascii: "."): dots += 1
            default: break
            }
            componentLength += 1
            guard componentLength <= Self.maximumNameBytes else { return false }
        }
        return componentLength > 0 && (dots != componentLength || dots > 2)
    }

    /// Joins the components with `/`, dropping empty ones and `.`, applying `..`; refuses `..` above the root.
    private static func normalise(_ decoded: [UInt8]) throws(Failure) -> String {
        guard decoded.count <= Self.maximumPathBytes else {
            throw .badRequest("path is longer than \(Self.maximumPathBytes) bytes")
        }
        var components: [ArraySlice<UInt8>] = []
        for component in decoded.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if component.elementsEqual(".".utf8) { continue }
            if component.elementsEqual("..".utf8) {
                guard components.popLast() != nil else { throw .badRequest("path leaves the image root") }
                continue
            }
            guard component.count <= Self.maximumNameBytes else {
                throw .badRequest("a path component is longer than \(Self.maximumNameBytes) bytes")
            }
            components.append(component)
        }
        var path: [UInt8] = [UInt8(ascii: "/")]
        for (index, component) in components.enumerated() {
            if index > 0 { path.append(UInt8(ascii: "/")) }
            path.append(contentsOf: component)
        }
        // A path ending in `/`, `/.` or `/..` names a directory: the trailing `/` is kept, so that the image
        // lookup refuses a file there (`files/etc/motd/` is not `files/etc/motd`).
        let last = decoded.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).last
        let namesDirectory = last.map { $0.isEmpty || $0.elementsEqual(".".utf8) || $0.elementsEqual("..".utf8) }
        if namesDirectory == true && !components.isEmpty { path.append(UInt8(ascii: "/")) }
        guard let text = String(validating: path, as: UTF8.self) else {
            throw .badRequest("path is not valid UTF-8")
        }
        return text
    }

    private static func decode(
        _ bytes: Bytes, what: String, plusIsSpace: Bool = false
    ) throws(Failure) -> String {
        if !bytes.contains(where: { $0 == UInt8(ascii: "%") || $0 == 0 || (plusIsSpace && $0 == UInt8(ascii: "+")) }) {
            // Nothing to decode: the common case, without a copy to decode into. The bytes are a run of a
            // string's, cut at ASCII delimiters: valid UTF-8 already.
            return String(decoding: bytes, as: UTF8.self)
        }
        let decoded = try Self.decodeBytes(bytes, what: what, plusIsSpace: plusIsSpace)
        guard let text = String(validating: decoded, as: UTF8.self) else {
            throw .badRequest("\(what) is not valid UTF-8")
        }
        return text
    }

    /// Percent-decodes once; refuses truncated or non-hex escapes and NUL.
    private static func decodeBytes(
        _ bytes: Bytes, what: String, plusIsSpace: Bool = false
    ) throws(Failure) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            var byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                let high = bytes.index(after: index)
                guard high < bytes.endIndex, bytes.index(after: high) < bytes.endIndex,
                    let upper = Self.hexValue(bytes[high]), let lower = Self.hexValue(bytes[bytes.index(after: high)])
                else { throw .badRequest("bad percent-encoding in \(what)") }
                byte = upper << 4 | lower
                index = bytes.index(index, offsetBy: 3)
            } else {
                if plusIsSpace && byte == UInt8(ascii: "+") { byte = UInt8(ascii: " ") }
                index = bytes.index(after: index)
            }
            guard byte != 0 else { throw .badRequest("NUL byte in \(what)") }
            out.append(byte)
        }
        return out
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
