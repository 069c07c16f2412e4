import NIOCore
import PageCache

/// Everything a ``PageShareDaemon`` is made of, with the defaults of the daemon: the listeners and
/// connection limits, the cache's size, request limits, the send budget, authentication, the state
/// directory and the images to attach. The command line, the configuration file and the environment only
/// change these values; their defaults are the ones here (and in the types they nest).
public struct DaemonConfiguration: Sendable {
    public var server = ServerConfiguration()
    /// Shares by content-defined chunk: two versions of an image cost little more than one (the library's
    /// own default, `file`, stays for comparison and for the page-level tests).
    public var cache = SharedPageCache.Configuration(budgetBytes: 1 << 30, sharing: .chunk)
    public var limits = DataPlane.Limits()
    /// Response bytes produced and not yet sent, daemon-wide (``SendBudget``).
    public var sendBudgetBytes = 64 << 20
    /// A response whose writes make no progress this long is cut (``SendBudget/sendTimeout``).
    public var sendTimeout = TimeAmount.seconds(60)
    /// Bearer tokens (sha256) and roles; nil: every client is an admin (loopback and unix sockets only).
    public var tokensFile: String?
    /// `/metrics` without a token.
    public var publicMetrics = false
    /// Failed authentications per client per minute before 429.
    public var authFailureLimit = 10
    /// Export per-image series.
    public var metricsPerImage = false
    /// Where admin-API changes are kept across restarts (nil: in memory only).
    public var stateDirectory: String?
    /// Images attached at every start, and those the daemon does not start without.
    public var images: [ImageRecord] = []
    public var requiredImages: Set<String> = []
    /// Every image file here is attached, and watched (``ImageCatalog/watchImageDirectory(_:)``).
    public var imageDirectory: String?

    public init() {}

    /// The send budget of the default configuration, for body chunks of `chunkBytes`.
    static func defaultSendBudget(chunkBytes: Int) -> SendBudget {
        var configuration = DaemonConfiguration()
        configuration.limits.chunkBytes = chunkBytes
        return configuration.sendBudget
    }

    /// The send budget these settings ask for.
    var sendBudget: SendBudget {
        SendBudget(
            poolBytes: self.sendBudgetBytes, connections: self.server.maximumConnections,
            chunkBytes: self.limits.chunkBytes, sendTimeout: self.sendTimeout)
    }
}
