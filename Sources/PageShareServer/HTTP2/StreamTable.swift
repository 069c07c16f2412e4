/// A connection's open streams by id. The stream last looked up is remembered: libnghttp2 reports a
/// stream's frames, fields and data one callback at a time, mostly for the same stream in a row, and each
/// would otherwise hash its id.
struct StreamTable {
    private var streams: [Int32: HTTP2Stream] = [:]
    private var lastID: Int32 = 0
    /// The stream of `lastID` (nil: that id is not open, or nothing was looked up yet).
    private var last: HTTP2Stream?

    var count: Int { self.streams.count }
    var isEmpty: Bool { self.streams.isEmpty }
    var all: Dictionary<Int32, HTTP2Stream>.Values { self.streams.values }

    /// The open stream `id`, if any.
    mutating func stream(_ id: Int32) -> HTTP2Stream? {
        if id == self.lastID, let last = self.last { return last }
        let found = self.streams[id]
        self.lastID = id
        self.last = found
        return found
    }

    mutating func insert(_ stream: HTTP2Stream) {
        self.streams[stream.id] = stream
        self.lastID = stream.id
        self.last = stream
    }

    /// Removes and returns stream `id`.
    mutating func remove(_ id: Int32) -> HTTP2Stream? {
        if id == self.lastID { self.last = nil }
        return self.streams.removeValue(forKey: id)
    }

    /// Removes and returns every stream.
    mutating func removeAll() -> [HTTP2Stream] {
        let all = Array(self.streams.values)
        self.streams = [:]
        self.last = nil
        return all
    }
}
