/// An error of the control plane (attach, detach, quotas, state), with a stable code the HTTP layer maps to
/// a status.
public struct ControlError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        /// A malformed body or field (400).
        public static let invalidRequest = Code("invalidRequest")
        /// No image with that id (404).
        public static let unknownImage = Code("unknownImage")
        /// The id is taken (409).
        public static let imageExists = Code("imageExists")
        /// The image file is missing, unreadable or not a valid EROFS image (422).
        public static let imageUnusable = Code("imageUnusable")
        /// The state directory could not be written; nothing changed (500).
        public static let stateWriteFailed = Code("stateWriteFailed")
        public var description: String { self.name }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { self.message }
}
