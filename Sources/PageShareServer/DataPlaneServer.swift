import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

/// The data-plane server: listeners speaking HTTP/1.1 and HTTP/2 (prior knowledge on cleartext TCP and unix
/// sockets, ALPN over TLS), each request answered by a ``RequestResponder`` on the connection's event loop.
public final class DataPlaneServer: Sendable {
    public let configuration: ServerConfiguration
    private let plane: DataPlane
    private let group: MultiThreadedEventLoopGroup
    /// Open connections, to ask each to finish on shutdown.
    private let connections: ConnectionTable
    private let sslContext: NIOSSLContext?
    private let bound = Mutex<[SocketAddress]>([])
    private let listening = Mutex<[any Channel]>([])

    /// Creates a server; nothing listens until ``start()``.
    /// - Throws: an `NIOSSLError` when the TLS certificate or key cannot be loaded.
    public init(configuration: ServerConfiguration, plane: DataPlane) throws {
        self.configuration = configuration
        self.plane = plane
        self.connections = ConnectionTable(
            maximum: configuration.maximumConnections, maximumPerAddress: configuration.maximumConnectionsPerAddress)
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.threads))
        if let tls = configuration.tls {
            var settings = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(tls.certificateChainPath).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.privateKeyPath, format: .pem)))
            settings.applicationProtocols = ["h2", "http/1.1"]
            self.sslContext = try NIOSSLContext(configuration: settings)
        } else {
            self.sslContext = nil
        }
    }

    /// Addresses the listeners are bound to (after ``start()``), in the order configured.
    public var boundAddresses: [SocketAddress] { self.bound.withLock { $0 } }

    /// Binds every listener.
    /// - Throws: ``ServerStartError`` for a non-loopback TCP listener when no tokens are configured (unless
    ///   allowed); the bind error of the first listener that fails (the others are closed again).
    public func start() async throws {
        if self.plane.access.isOpen && !self.configuration.allowUnauthenticatedRemote,
            let remote = self.configuration.listeners.first(where: { !$0.isLocal })
        {
            throw ServerStartError(
                "refusing to listen on \(remote) without authentication: configure a tokens file, listen on "
                    + "loopback, or allow unauthenticated remote access explicitly")
        }
        var addresses: [SocketAddress] = []
        for listener in self.configuration.listeners {
            let channel: any Channel
            do {
                channel = try await self.bind(listener)
            } catch {
                throw ServerStartError(Self.bindFailure(listener, error))
            }
            self.listening.withLock { $0.append(channel) }
            if let address = channel.localAddress { addresses.append(address) }
        }
        self.bound.withLock { $0 = addresses }
        self.plane.logger.info(
            "listening",
            metadata: [
                "listeners": "\(self.configuration.listeners.map(\.description).joined(separator: " "))",
                "tls": "\(self.sslContext != nil)",
            ])
    }

    /// Stops accepting, asks every connection to finish (HTTP/2: GOAWAY; HTTP/1.1: close after the response
    /// in flight), waits up to the grace period, then closes what is left and stops the event loops.
    public func shutdown() async {
        for channel in self.listening.withLock({ $0 }) { try? await channel.close() }
        for channel in self.connections.channels {
            // HTTP/1.1 (HTTP1RequestHandler) closes after the response in flight; HTTP/2 (HTTP2Connection)
            // sends GOAWAY and closes when its streams are done.
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        let deadline = ContinuousClock.now + .nanoseconds(self.configuration.shutdownGracePeriod.nanoseconds)
        while !self.connections.isEmpty && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for channel in self.connections.channels { try? await channel.close() }
        try? await self.group.shutdownGracefully()
    }

    /// Returns once every event loop has run a task: a loop stuck in a handler never returns (the service
    /// manager's watchdog then restarts the daemon).
    public func eventLoopsAnswer() async {
        for loop in self.group.makeIterator() { try? await loop.submit {}.get() }
    }

    // MARK: Listeners

    private func bind(_ listener: ServerConfiguration.Listener) async throws -> any Channel {
        let bootstrap = ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
        switch listener {
        case .tcp(let host, let port):
            let tls = self.sslContext
            return
                try await bootstrap
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in self.initializeTCP(channel, tls: tls) }
                .bind(host: host, port: port).get()
        case .inherited(let descriptor):
            let tls = self.sslContext
            let isTCP = Self.isTCPSocket(descriptor)
            let configured = isTCP ? bootstrap.childChannelOption(.tcpOption(.tcp_nodelay), value: 1) : bootstrap
            return
                try await configured
                .childChannelInitializer { channel in
                    isTCP ? self.initializeTCP(channel, tls: tls) : self.initializeUnix(channel)
                }
                .withBoundSocket(descriptor).get()
        case .unix(let path, let mode):
            let channel =
                try await bootstrap
                .childChannelInitializer { channel in self.initializeUnix(channel) }
                .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
            guard chmod(path, mode_t(mode)) == 0 else {
                try? await channel.close()
                throw IOError(errnoCode: errno, reason: "chmod \(path)")
            }
            return channel
        }
    }

    /// A TCP connection: its peer is the client's IP address.
    private func initializeTCP(_ channel: any Channel, tls: NIOSSLContext?) -> EventLoopFuture<Void> {
        let peer = ConnectionPeer(address: channel.remoteAddress?.ipAddress ?? "unknown", uid: nil)
        return self.initialize(channel, tls: tls, peer: peer)
    }

    /// A unix-socket connection: clients are told apart by uid (`SO_PEERCRED`; they share one "address").
    private func initializeUnix(_ channel: any Channel) -> EventLoopFuture<Void> {
        Self.peerUID(of: channel).flatMap { uid in
            self.initialize(
                channel, tls: nil, peer: ConnectionPeer(address: "unix:\(uid.map(String.init) ?? "?")", uid: uid))
        }
    }

    /// Sets up one accepted connection: the connection limit, then TLS + ALPN or cleartext sniffing.
    private func initialize(_ channel: any Channel, tls: NIOSSLContext?, peer: ConnectionPeer) -> EventLoopFuture<Void>
    {
        let progress = ConnectionProgress()
        switch self.connections.admit(channel, address: peer.address, progress: progress, logger: self.plane.logger) {
        case .refused: return channel.close()
        case .admittedShedding(let shed): shed.close(promise: nil)
        case .admitted: break
        }
        // First in every pipeline, so that a connection that never sends a preface, a TLS hello or a request
        // (or stops reading) is closed after the idle timeout too, and one trickling a request head after
        // the header timeout.
        let deadline = RequestDeadline(
            headerTimeout: self.configuration.headerTimeout, bodyTimeout: self.configuration.bodyTimeout,
            progress: progress)
        do {
            try channel.pipeline.syncOperations.addHandlers(
                IdleConnectionCloser(timeout: self.configuration.idleTimeout, progress: progress), deadline)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        let boundDeadline = NIOLoopBound(deadline, eventLoop: channel.eventLoop)
        if let tls {
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
            }.flatMapThrowing {
                // ALPN: h2, else HTTP/1.1.
                let negotiation = ApplicationProtocolNegotiationHandler { result, channel in
                    channel.eventLoop.makeCompletedFuture {
                        if case .negotiated("h2") = result {
                            try self.configureHTTP2(
                                channel, peer: peer, deadline: boundDeadline.value, progress: progress)
                        } else {
                            try self.configureHTTP1(
                                channel, peer: peer, deadline: boundDeadline.value, progress: progress)
                        }
                    }
                }
                try channel.pipeline.syncOperations.addHandler(negotiation)
            }
        }
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(
                HTTPVersionSniffer(
                    configureHTTP1: {
                        try self.configureHTTP1($0, peer: peer, deadline: boundDeadline.value, progress: progress)
                    },
                    configureHTTP2: {
                        try self.configureHTTP2($0, peer: peer, deadline: boundDeadline.value, progress: progress)
                    }))
        }
    }

    private func configureHTTP1(
        _ channel: any Channel, peer: ConnectionPeer, deadline: RequestDeadline, progress: ConnectionProgress
    ) throws {
        self.plane.metrics.connectionOpened("http/1.1", closing: channel)
        let operations = channel.pipeline.syncOperations
        // NIO's request decoder, then HTTP1RequestHandler: it answers parser errors (a problem+json body),
        // keeps pipelined requests in order, and writes responses as bytes itself (no response encoder).
        try operations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        try operations.addHandler(
            HTTP1RequestHandler(
                plane: self.plane, peer: peer, deadline: deadline, progress: progress, budget: self.plane.sendBudget))
    }

    private func configureHTTP2(
        _ channel: any Channel, peer: ConnectionPeer, deadline: RequestDeadline, progress: ConnectionProgress
    ) throws {
        deadline.stop()
        self.plane.metrics.connectionOpened("h2", closing: channel)
        // libnghttp2 does the framing, HPACK, flow control and its DoS limits; HTTP2Connection answers the
        // streams (backpressure per stream, the send budget, REFUSED_STREAM past the limit, GOAWAY).
        try channel.pipeline.syncOperations.addHandler(
            HTTP2Connection(
                plane: self.plane, peer: peer, maximumStreams: self.configuration.maximumConcurrentStreams,
                maximumHeaderListSize: self.configuration.maximumHeaderListSize, budget: self.plane.sendBudget,
                progress: progress))
    }

    /// Whether `descriptor` is an IPv4 or IPv6 socket (else a unix one).
    private static func isTCPSocket(_ descriptor: Int32) -> Bool {
        var domain: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0 else { return false }
        return domain == AF_INET || domain == AF_INET6
    }

    /// The uid of a unix-socket peer (`SO_PEERCRED`), nil if it cannot be read.
    private static func peerUID(of channel: any Channel) -> EventLoopFuture<UInt32?> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeSucceededFuture(nil)
        }
        let credentials: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        return credentials.map { Optional($0.uid) }.recover { _ in nil }
    }
}

/// `struct ucred` of `SO_PEERCRED` (Linux): the peer's pid, uid and gid.
private struct PeerCredentials: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}

/// The server cannot start with this configuration.
extension DataPlaneServer {
    /// What an operator needs to read about a listener that could not be bound: which, why, and for a unix
    /// socket whose directory refused it, that directory's owner and mode.
    static func bindFailure(_ listener: ServerConfiguration.Listener, _ error: any Error) -> String {
        let reason: String
        if let error = error as? IOError {
            reason = String(cString: strerror(error.errnoCode)).lowercased()
        } else {
            reason = "\(error)"
        }
        switch listener {
        case .tcp: return "cannot listen on \(listener): \(reason)"
        case .inherited: return "cannot use the inherited socket \(listener): \(reason)"
        case .unix(let path, _):
            let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast()
                .joined(separator: "/")
            var info = stat()
            guard let error = error as? IOError, error.errnoCode == EACCES || error.errnoCode == EPERM,
                stat(directory.isEmpty ? "." : directory, &info) == 0
            else { return "cannot bind unix socket \(path): \(reason)" }
            return
                "cannot bind unix socket \(path): \(reason) (directory \(directory.isEmpty ? "." : directory): owner "
                + "uid \(info.st_uid), mode 0\(String(info.st_mode & 0o7777, radix: 8)); running as uid \(geteuid()))"
        }
    }
}

public struct ServerStartError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
