import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A minimal HTTP/1.1 client for the admin API, over TCP (cleartext or TLS) or the daemon's unix socket
/// (which Foundation's URLSession cannot reach): one request per connection, the whole response collected.
struct AdminClient {
    enum Endpoint: CustomStringConvertible {
        /// TCP; with `tls`, a TLS connection verified against the system's trust store or `--cacert`.
        case tcp(host: String, port: Int, tls: NIOSSLContext?)
        case unix(path: String)

        var description: String {
            switch self {
            case .tcp(let host, let port, let tls): "\(tls == nil ? "http" : "https")://\(host):\(port)"
            case .unix(let path): "unix:\(path)"
            }
        }
    }

    struct Response {
        var status: HTTPResponseStatus
        var body: [UInt8]
    }

    let endpoint: Endpoint
    let token: String?

    func send(_ method: HTTPMethod, _ path: String, json: [UInt8]? = nil) async throws -> Response {
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: Response.self)
        let tls: (context: NIOSSLContext, hostname: String?)? = {
            guard case .tcp(let host, _, let context?) = self.endpoint else { return nil }
            // SNI and name checks take a DNS name; an IP address is checked against the certificate's IP SANs.
            let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
            return (context, isAddress ? nil : host)
        }()
        let bootstrap = ClientBootstrap(group: group).connectTimeout(.seconds(10)).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                if let tls {
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: tls.context, serverHostname: tls.hostname))
                }
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise))
            }
        }
        let channel: any Channel
        var host = "localhost"
        do {
            switch self.endpoint {
            case .tcp(let name, let port, _):
                host = "\(name):\(port)"
                channel = try await bootstrap.connect(host: name, port: port).get()
            case .unix(let path):
                channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
            }
        } catch {
            promise.fail(error)  // a promise must be completed, even when no connection was made
            throw AdminFailure(description: "cannot reach the daemon at \(self.endpoint): \(error)")
        }
        var headers = HTTPHeaders()
        headers.add(name: "host", value: host)
        headers.add(name: "connection", value: "close")
        if let token = self.token { headers.add(name: "authorization", value: "Bearer \(token)") }
        if let json {
            headers.add(name: "content-type", value: "application/json")
            headers.add(name: "content-length", value: String(json.count))
        }
        channel.write(HTTPClientRequestPart.head(.init(version: .http1_1, method: method, uri: path, headers: headers)))
            .whenFailure { promise.fail($0) }
        if let json { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: json))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        defer { channel.close(promise: nil) }
        return try await promise.futureResult.get()
    }
}

/// Collects one response and completes the promise at its end (or with the error, or when the connection
/// closes early).
private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    private let promise: EventLoopPromise<AdminClient.Response>
    private var status: HTTPResponseStatus = .ok
    private var body: [UInt8] = []

    init(promise: EventLoopPromise<AdminClient.Response>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head): self.status = head.status
        case .body(let part): self.body.append(contentsOf: part.readableBytesView)
        case .end: self.promise.succeed(.init(status: self.status, body: self.body))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        struct ConnectionClosed: Error, CustomStringConvertible {
            var description: String { "the daemon closed the connection before answering" }
        }
        self.promise.fail(ConnectionClosed())
    }
}
