/// What the conditional request headers (RFC 9110 §13) decide for a GET or HEAD of a file.
enum PreconditionOutcome: Equatable {
    /// Serve the representation; `honourRange` is false when `If-Range` did not match (send 200, whole).
    case proceed(honourRange: Bool)
    /// 304 Not Modified.
    case notModified
    /// 412 Precondition Failed.
    case failed
}

/// The validators of one file and the evaluation of conditional headers against them.
struct Validators {
    /// The strong entity tag, quotes included.
    var entityTag: String
    /// Modification time in seconds since the epoch.
    var lastModified: Int64

    /// Evaluates the headers in the order of RFC 9110 §13.2.2. `ifModifiedSince` is ignored when
    /// `ifNoneMatch` is present; `ifRange` matters only when a Range header is present.
    func evaluate(
        ifMatch: String?, ifUnmodifiedSince: String?, ifNoneMatch: String?, ifModifiedSince: String?,
        ifRange: String?, hasRange: Bool
    ) -> PreconditionOutcome {
        if let ifMatch {
            if !Self.list(ifMatch, contains: self.entityTag, weak: false) { return .failed }
        } else if let ifUnmodifiedSince, let date = HTTPDate.parse(ifUnmodifiedSince), self.lastModified > date {
            return .failed
        }
        if let ifNoneMatch {
            if Self.list(ifNoneMatch, contains: self.entityTag, weak: true) { return .notModified }
        } else if let ifModifiedSince, let date = HTTPDate.parse(ifModifiedSince), self.lastModified <= date {
            return .notModified
        }
        guard hasRange, let ifRange else { return .proceed(honourRange: true) }
        let condition = Substring(ifRange).trimmingWhitespace()
        if condition.hasPrefix("\"") || condition.hasPrefix("W/") {
            // If-Range takes a strong comparison; a weak tag never matches.
            return .proceed(honourRange: condition == self.entityTag)
        }
        guard let date = HTTPDate.parse(String(condition)) else { return .proceed(honourRange: false) }
        return .proceed(honourRange: date == self.lastModified)
    }

    /// Whether the comma-separated entity-tag list `header` (or `*`) matches `tag`.
    static func list(_ header: String, contains tag: String, weak: Bool) -> Bool {
        let opaqueTag = tag.hasPrefix("W/") ? tag.dropFirst(2) : Substring(tag)
        for element in header.split(separator: ",") {
            var candidate = element.trimmingWhitespace()
            if candidate == "*" { return true }
            if candidate.hasPrefix("W/") {
                guard weak else { continue }
                candidate = candidate.dropFirst(2)
            }
            if candidate == opaqueTag { return true }
        }
        return false
    }
}
