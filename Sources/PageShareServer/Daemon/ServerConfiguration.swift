import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Where and how the data plane listens, and the limits that protect it.
public struct ServerConfiguration: Sendable {
    /// A socket to listen on.
    public enum Listener: Sendable, Hashable, CustomStringConvertible {
        /// TCP on `host:port` (port 0: an ephemeral port, see ``DataPlaneServer/boundAddresses``).
        case tcp(host: String, port: Int)
        /// A unix domain socket at `path`, created with permission bits `mode` (an existing socket file is
        /// replaced).
        case unix(path: String, mode: UInt16)
        /// A listening socket handed over by the service manager (systemd socket activation: descriptor 3 and
        /// up); TCP or unix, whatever it was bound to.
        case inherited(descriptor: Int32)

        public var description: String {
            switch self {
            case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            case .unix(let path, _): "unix:\(path)"
            case .inherited(let descriptor): "fd:\(descriptor)"
            }
        }

        /// Whether only this machine can connect: a unix socket, or TCP on a loopback address.
        public var isLocal: Bool {
            switch self {
            case .unix: true
            case .tcp(let host, _): host == "localhost" || host == "::1" || host.hasPrefix("127.")
            case .inherited(let descriptor): Self.isLocalSocket(descriptor)
            }
        }
    }

    /// PEM files of the certificate chain and private key: with them, TCP listeners speak TLS and negotiate
    /// `h2` or `http/1.1` by ALPN; without them, TCP listeners speak cleartext HTTP/1.1 and HTTP/2 with
    /// prior knowledge on the same port. Unix sockets are always cleartext.
    public struct TLS: Sendable, Hashable {
        public var certificateChainPath: String
        public var privateKeyPath: String
        public init(certificateChainPath: String, privateKeyPath: String) {
            self.certificateChainPath = certificateChainPath
            self.privateKeyPath = privateKeyPath
        }
    }

    public var listeners: [Listener]
    public var tls: TLS?
    /// Connections accepted at once across listeners; further ones are closed on accept.
    public var maximumConnections: Int
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`.
    public var maximumConcurrentStreams: Int
    /// HTTP/2 `SETTINGS_MAX_HEADER_LIST_SIZE`; HTTP/1.1 heads are limited by NIO's parser (80 KiB).
    public var maximumHeaderListSize: Int
    /// A connection with no open request or stream for this long is closed (HTTP/2: with GOAWAY).
    public var idleTimeout: TimeAmount
    /// An HTTP/1.1 request head must be complete this long after its first byte (the first one: after the
    /// connection opened), however slowly it trickles in (nginx's `client_header_timeout`).
    public var headerTimeout: TimeAmount
    /// An HTTP/1.1 request body must be complete this long after its head.
    public var bodyTimeout: TimeAmount
    /// Connections one client address may hold at once; 0: no limit beside ``maximumConnections``.
    public var maximumConnectionsPerAddress: Int
    /// On shutdown, in-flight requests get this long to finish before connections are closed.
    public var shutdownGracePeriod: TimeAmount
    /// Event loop threads (default: one per core).
    public var threads: Int
    /// Listen on non-loopback TCP addresses although no tokens are configured (everyone is an admin).
    public var allowUnauthenticatedRemote: Bool

    public init(
        listeners: [Listener] = [.tcp(host: "127.0.0.1", port: 8480)], tls: TLS? = nil,
        maximumConnections: Int = 10_000, maximumConcurrentStreams: Int = 128, maximumHeaderListSize: Int = 16_384,
        idleTimeout: TimeAmount = .seconds(60), shutdownGracePeriod: TimeAmount = .seconds(10),
        threads: Int = System.coreCount, allowUnauthenticatedRemote: Bool = false,
        headerTimeout: TimeAmount = .seconds(30), bodyTimeout: TimeAmount = .seconds(60),
        maximumConnectionsPerAddress: Int = 0
    ) {
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
        self.maximumConnectionsPerAddress = maximumConnectionsPerAddress
        self.allowUnauthenticatedRemote = allowUnauthenticatedRemote
        self.listeners = listeners
        self.tls = tls
        self.maximumConnections = maximumConnections
        self.maximumConcurrentStreams = maximumConcurrentStreams
        self.maximumHeaderListSize = maximumHeaderListSize
        self.idleTimeout = idleTimeout
        self.shutdownGracePeriod = shutdownGracePeriod
        self.threads = threads
    }
}

extension ServerConfiguration.Listener {
    /// Whether the socket `descriptor` is bound to a unix path or a loopback address (`getsockname`).
    static func isLocalSocket(_ descriptor: Int32) -> Bool {
        // Read as bytes (family, then the address at its fixed offset): the members of the sockaddr structs
        // come from a module this target does not import.
        var storage = [UInt8](repeating: 0, count: 128)
        var length = socklen_t(storage.count)
        let named = storage.withUnsafeMutableBytes { bytes in
            getsockname(descriptor, bytes.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
        }
        guard named == 0, length >= 2 else { return false }
        let family = Int32(storage.withUnsafeBytes { $0.load(as: sa_family_t.self) })
        switch family {
        case AF_UNIX:
            return true
        case AF_INET:  // sockaddr_in: family (2), port (2), address (4), first byte 127
            return length >= 8 && storage[4] == 127
        case AF_INET6:  // sockaddr_in6: family (2), port (2), flow info (4), address (16): ::1
            return length >= 24 && storage[8..<23].allSatisfy { $0 == 0 } && storage[23] == 1
        default:
            return false
        }
    }
}
