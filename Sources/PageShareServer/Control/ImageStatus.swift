import PageCache

/// Where an attached image came from: the configuration (command line or config file; attached again on
/// every start), the admin API (kept in the state directory), or the image directory (attached while its
/// file is there).
public enum ImageOrigin: String, Codable, Sendable {
    case configuration, api, directory
}

/// An image as the admin API shows it: what was asked for, whether it is usable, and its accounting.
public struct ImageStatus: Codable, Sendable, Equatable {
    /// `attaching`: attached and readable while its digests are computed (`digest` mode); `ready`; `failed`:
    /// not attached (the image could not be opened on restore), with the reason; `changed`: its file was
    /// written to after it was attached, so its reads answer 503 until it is detached and attached again.
    public enum State: String, Codable, Sendable { case attaching, ready, failed, changed }

    /// How far the digests are computed, by files and bytes.
    public struct Progress: Codable, Sendable, Equatable {
        public var percent: Double
        public var bytesDone: UInt64
        public var bytesTotal: UInt64
        public var filesDone: Int
        public var filesTotal: Int
    }

    /// The image's share of the cache's accounting.
    public struct Statistics: Codable, Sendable, Equatable {
        public var residentBytes: Int
        public var logicalReadBytes: Int
        public var hits: Int
        public var misses: Int
        public var fills: Int
    }

    public var id: String
    public var path: String
    public var domain: String
    /// The fingerprint mode asked for, and the one in effect (absent when not attached).
    public var fingerprint: ImageRecord.Fingerprint
    public var mode: String?
    public var verify: Bool
    public var devices: [String]
    public var origin: ImageOrigin
    public var state: State
    public var progress: Progress?
    /// Why the image failed, or a note on a ready one (digests that could not be computed ahead).
    public var reason: String?
    public var statistics: Statistics?
}

extension ImageStatus.Progress {
    init(_ progress: DigestProgress) {
        self.init(
            percent: (progress.percent * 10).rounded() / 10, bytesDone: progress.bytesDone,
            bytesTotal: progress.bytesTotal, filesDone: progress.filesDone, filesTotal: progress.filesTotal)
    }
}

extension ImageStatus.Statistics {
    init(_ statistics: ImageStatistics) {
        self.init(
            residentBytes: statistics.residentBytes, logicalReadBytes: statistics.logicalReadBytes,
            hits: statistics.hits, misses: statistics.misses, fills: statistics.fills)
    }
}
