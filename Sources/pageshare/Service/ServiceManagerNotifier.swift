import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The `sd_notify` protocol without libsystemd: state lines (`READY=1`, `STOPPING=1`, `RELOADING=1`,
/// `WATCHDOG=1`, `STATUS=…`) sent as one datagram each to the unix socket named by `$NOTIFY_SOCKET` (a path,
/// or an abstract name after `@`). Without the variable (not started by systemd with `Type=notify`) every
/// call does nothing.
struct ServiceManagerNotifier: Sendable {
    /// The socket address bytes (`sockaddr_un`), nil when there is no manager to tell.
    private let address: [UInt8]?
    /// How often the manager wants `WATCHDOG=1` (`$WATCHDOG_USEC`, for this process: `$WATCHDOG_PID`).
    let watchdogInterval: Duration?

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.address = environment["NOTIFY_SOCKET"].flatMap(Self.socketAddress)
        let forUs = environment["WATCHDOG_PID"].map { $0 == String(getpid()) } ?? true
        if forUs, let micros = environment["WATCHDOG_USEC"].flatMap(UInt64.init), micros > 0 {
            self.watchdogInterval = .microseconds(micros)
        } else {
            self.watchdogInterval = nil
        }
    }

    var isEnabled: Bool { self.address != nil }

    /// Sends `state` (newline-separated assignments); failures are ignored, as sd_notify's callers do.
    func notify(_ state: String) {
        guard let address = self.address else { return }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        let bytes = Array(state.utf8)
        _ = address.withUnsafeBytes { addressBytes in
            bytes.withUnsafeBytes { payload in
                sendto(
                    descriptor, payload.baseAddress, payload.count, Int32(MSG_NOSIGNAL),
                    addressBytes.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(addressBytes.count))
            }
        }
    }

    /// `RELOADING=1` with the monotonic time systemd's `Type=notify-reload` asks for.
    func reloading() {
        // NIODeadline reads CLOCK_MONOTONIC, the clock systemd compares with.
        self.notify("RELOADING=1\nMONOTONIC_USEC=\(NIODeadline.now().uptimeNanoseconds / 1000)")
    }

    /// `sockaddr_un` for `name`: family, then the path bytes (a leading `@` becomes the NUL of an abstract
    /// name); nil if it does not fit.
    private static func socketAddress(_ name: String) -> [UInt8]? {
        var path = Array(name.utf8)
        guard !path.isEmpty, path.count < 108 else { return nil }
        let abstract = path[0] == UInt8(ascii: "@")
        if abstract { path[0] = 0 }
        let family = withUnsafeBytes(of: sa_family_t(AF_UNIX)) { Array($0) }
        // A path is NUL-terminated; an abstract name's length is exact.
        return family + path + (abstract ? [] : [0])
    }
}
