/// An error from the shared page cache. Equality compares ``code`` only.
public struct PageCacheError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public static let invalidArgument = Code("invalidArgument")
        public static let unknownImage = Code("unknownImage")
        public static let imageExists = Code("imageExists")
        public static let notARegularFile = Code("notARegularFile")
        public static let fillFailed = Code("fillFailed")
        /// The image's file was written to after it was attached: its reads fail until it is attached again.
        public static let imageChanged = Code("imageChanged")
        public var description: String { self.name }
    }

    public var code: Code
    public var message: String
    /// The underlying error (an `EROFSError` for a broken image region).
    public var cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { self.message }
    public static func == (lhs: PageCacheError, rhs: PageCacheError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(self.code) }
}
