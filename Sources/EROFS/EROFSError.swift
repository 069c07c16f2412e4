/// An error reading an EROFS image.
///
/// Every check on a value taken from the image throws one of these (the kernel's `-EFSCORRUPTED`), never
/// traps. Equality compares ``code`` only, so tests can match `error.code == .corrupted` and ignore the
/// message, the way `CertificateError` and NIOFS's `FileSystemError` do.
public struct EROFSError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is. Open set: new codes do not break exhaustive handling by callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: String, Hashable, Sendable {
            case notEROFS, unsupportedFeature, unsupported, corrupted, ioFailure
            case notFound, notADirectory, isADirectory, notASymlink, tooManySymlinks, missingDevice
            case invalidArgument
        }
        private let backing: Backing
        private init(_ backing: Backing) { self.backing = backing }

        /// The bytes at the superblock offset are not an EROFS superblock.
        public static let notEROFS = Code(.notEROFS)
        /// The image sets an incompatible feature bit this reader does not know.
        public static let unsupportedFeature = Code(.unsupportedFeature)
        /// The image uses a layout or value this reader does not handle yet (e.g. compressed data).
        public static let unsupported = Code(.unsupported)
        /// A structural value in the image is out of bounds or inconsistent.
        public static let corrupted = Code(.corrupted)
        /// Reading the image (or an extra device) failed or came up short.
        public static let ioFailure = Code(.ioFailure)
        /// A path component does not exist.
        public static let notFound = Code(.notFound)
        /// A path component that must be a directory is not one.
        public static let notADirectory = Code(.notADirectory)
        /// A file operation was asked of a directory.
        public static let isADirectory = Code(.isADirectory)
        /// A symlink operation was asked of something else.
        public static let notASymlink = Code(.notASymlink)
        /// Path resolution followed more than ``PathResolver/maximumSymlinkFollows`` symlinks.
        public static let tooManySymlinks = Code(.tooManySymlinks)
        /// An extra device (blob) the image needs was not given or cannot be opened.
        public static let missingDevice = Code(.missingDevice)
        /// The caller passed an invalid argument (a bad path, a negative offset...).
        public static let invalidArgument = Code(.invalidArgument)

        public var description: String { self.backing.rawValue }
    }

    /// The kind of failure.
    public var code: Code
    /// A readable reason naming the value found and the limit it broke.
    public var message: String
    /// The inode the failure concerns, when there is one (the kernel's `@ nid %llu`).
    public var nid: UInt64?
    /// The byte offset in the image the failure concerns, when known.
    public var byteOffset: UInt64?

    public init(_ code: Code, _ message: String, nid: UInt64? = nil, byteOffset: UInt64? = nil) {
        self.code = code
        self.message = message
        self.nid = nid
        self.byteOffset = byteOffset
    }

    /// The message with the nid and offset; a corruption says so first (`corrupt image: …`), so that an
    /// operator reading a log line knows the image is at fault.
    public var description: String {
        var text = self.code == .corrupted ? "corrupt image: \(self.message)" : self.message
        if let nid = self.nid { text += " (nid \(nid))" }
        if let byteOffset = self.byteOffset { text += " (offset \(byteOffset))" }
        return text
    }

    public static func == (lhs: EROFSError, rhs: EROFSError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(self.code) }

    static func corrupted(_ message: String, nid: UInt64? = nil, at offset: UInt64? = nil) -> EROFSError {
        EROFSError(.corrupted, message, nid: nid, byteOffset: offset)
    }
}
