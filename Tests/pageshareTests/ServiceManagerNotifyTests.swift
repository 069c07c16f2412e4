import EROFSTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `Type=notify`: the daemon tells the service manager over `$NOTIFY_SOCKET` (a datagram socket of the test's
/// own here) when it is ready, reloading, alive (watchdog) and stopping.
@Suite("systemd notify protocol")
struct ServiceManagerNotifyTests {
    /// A bound unix datagram socket collecting what the daemon sends.
    final class NotifySocket {
        let path: String
        let descriptor: Int32

        init(path: String) throws {
            self.path = path
            self.descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(self.descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
            var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
            setsockopt(self.descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        /// Datagrams received until `done` holds for them or `seconds` pass.
        func receive(for seconds: Double, until done: ([String]) -> Bool) -> [String] {
            var messages: [String] = []
            let deadline = Date().addingTimeInterval(seconds)
            var buffer = [UInt8](repeating: 0, count: 4096)
            while Date() < deadline && !done(messages) {
                let count = recv(self.descriptor, &buffer, buffer.count, 0)
                if count > 0 { messages.append(String(decoding: buffer[0..<count], as: UTF8.self)) }
            }
            return messages
        }

        deinit { close(self.descriptor) }
    }

    @Test("READY=1 once serving, WATCHDOG=1 at half the interval, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1")
    func notifications() throws {
        let image = try TestImage(options: []) { try TestTree.write($0 + "/file", Array("hi\n".utf8)) }
        defer { image.remove() }
        let notify = try NotifySocket(path: image.directory.path + "/notify")
        let daemon = try Daemon(
            directory: image.directory.path, arguments: ["--image", "a=\(image.path)"],
            environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"])
        defer { daemon.stop() }
        let started = notify.receive(for: 5) { $0.filter { $0.contains("WATCHDOG=1") }.count >= 2 }
        #expect(started.first?.hasPrefix("READY=1") == true, "\(started)")
        #expect(started.filter { $0 == "WATCHDOG=1" }.count >= 2, "\(started)")
        daemon.kill(SIGHUP)
        let reloaded = notify.receive(for: 5) { $0.contains { $0.hasPrefix("READY=1") } }
        let reloading = reloaded.firstIndex { $0.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") }
        let ready = reloaded.firstIndex { $0.hasPrefix("READY=1") }
        #expect(reloading != nil && ready != nil && reloading! < ready!, "\(reloaded)")
        daemon.kill(SIGTERM)
        let stopping = notify.receive(for: 5) { $0.contains { $0.hasPrefix("STOPPING=1") } }
        #expect(stopping.contains { $0.hasPrefix("STOPPING=1") }, "\(stopping)")
    }

    @Test("without NOTIFY_SOCKET nothing is sent and the daemon serves as before")
    func withoutManager() throws {
        let image = try TestImage(options: []) { try TestTree.write($0 + "/file", Array("hi\n".utf8)) }
        defer { image.remove() }
        let daemon = try Daemon(directory: image.directory.path, arguments: ["--image", "a=\(image.path)"])
        defer { daemon.stop() }
        #expect(daemon.request("GET", "/v1/images/a/files/file").body.hasPrefix("hi\n"))
    }
}
