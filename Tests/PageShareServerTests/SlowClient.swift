import Foundation
import Glibc

/// A deliberately slow HTTP/1.1 client on a raw socket (a small receive buffer, reads paced by a sleep), for
/// tests that need a download to stay in flight: curl 7.88's `--limit-rate` does not hold one back on
/// loopback.
enum SlowClient {
    struct Result: Sendable {
        var status: Int
        var body: [UInt8]
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// GETs `target` from 127.0.0.1:`port`; calls `started` once the response head has arrived, then reads
    /// the body `chunk` bytes every `pause`, through a `receiveBuffer`-byte socket receive buffer.
    static func get(
        port: Int, target: String, chunk: Int = 32 * 1024, pause: Duration = .milliseconds(20),
        receiveBuffer: Int32 = 16 * 1024, started: @escaping @Sendable () -> Void
    ) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(
                    with: Swift.Result {
                        try Self.getBlocking(
                            port: port, target: target, chunk: chunk, pause: pause, receiveBuffer: receiveBuffer,
                            started: started)
                    })
            }.start()
        }
    }

    private static func getBlocking(
        port: Int, target: String, chunk: Int, pause: Duration, receiveBuffer: Int32, started: () -> Void
    ) throws -> Result {
        var announced = false
        defer { if !announced { started() } }  // a failing client must not leave the test waiting
        let socket = try Self.connectLoopback(port: port, receiveBuffer: receiveBuffer)
        defer { close(socket) }
        let request = Array("GET \(target) HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
        guard send(socket, request, request.count, 0) == request.count else { throw Failure(description: "send") }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: chunk)
        var headEnd: Int? = nil
        var contentLength = Int.max
        while received.count - (headEnd ?? 0) < contentLength {
            let count = recv(socket, &buffer, chunk, 0)
            guard count > 0 else { break }
            received += buffer[0..<count]
            if headEnd == nil, let end = Self.find(Array("\r\n\r\n".utf8), in: received) {
                headEnd = end + 4
                let head = String(decoding: received[0..<end], as: UTF8.self).lowercased()
                for line in head.components(separatedBy: "\r\n") where line.hasPrefix("content-length:") {
                    contentLength =
                        Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
                }
                announced = true
                started()
            }
            if headEnd != nil { Thread.sleep(forTimeInterval: Double(pause.components.attoseconds) / 1e18) }
        }
        guard let headEnd else { throw Failure(description: "no response head") }
        let statusLine = String(decoding: received[0..<min(received.count, 12)], as: UTF8.self)
        let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        return Result(status: status, body: Array(received[headEnd...]))
    }

    /// Connects to 127.0.0.1:`port`, sends nothing, and returns how long the server took to close the
    /// connection (nil if it was still open after `limit`).
    static func silentConnectionLifetime(port: Int, limit: Duration) async throws -> Duration? {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Swift.Result { try Self.silentBlocking(port: port, limit: limit) })
            }.start()
        }
    }

    private static func silentBlocking(port: Int, limit: Duration) throws -> Duration? {
        let socket = try Self.connectLoopback(port: port)
        defer { close(socket) }
        var timeout = timeval(tv_sec: Int(limit.components.seconds), tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let started = ContinuousClock.now
        var byte: UInt8 = 0
        let count = recv(socket, &byte, 1, 0)
        return count == 0 ? ContinuousClock.now - started : nil
    }

    /// Connects to 127.0.0.1:`port` with a small receive buffer, sends a GET for `target` and returns the
    /// socket without reading anything: a client that stopped reading. The caller closes it.
    static func stalledReader(port: Int, target: String) throws -> Int32 {
        let socket = try Self.connectLoopback(port: port, receiveBuffer: 4096)
        let request = Array("GET \(target) HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
        guard send(socket, request, request.count, 0) == request.count else {
            close(socket)
            throw Failure(description: "send")
        }
        return socket
    }

    /// 127.0.0.1:`port` as a socket address.
    static func loopbackAddress(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// A TCP socket connected to 127.0.0.1:`port`, with a small receive buffer when asked.
    static func connectLoopback(port: Int, receiveBuffer: Int32? = nil) throws -> Int32 {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw Failure(description: "socket: \(errno)") }
        if var size = receiveBuffer {
            setsockopt(socket, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = Self.loopbackAddress(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(socket)
            throw Failure(description: "connect: \(errno)")
        }
        return socket
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for index in 0...(haystack.count - needle.count)
        where haystack[index..<index + needle.count].elementsEqual(needle) {
            return index
        }
        return nil
    }
}
