import ArgumentParser
import EROFS
import Foundation
import PageCache

/// `ID=PATH[@DOMAIN]`: an image to attach at start (a relative path is taken from the working directory).
struct ImageSpecification: ExpressibleByArgument {
    var id: String
    var path: String
    var domain: String

    init?(argument: String) {
        guard let equals = argument.firstIndex(of: "=") else { return nil }
        self.id = String(argument[..<equals])
        var rest = argument[argument.index(after: equals)...]
        self.domain = "default"
        if let at = rest.lastIndex(of: "@") {
            self.domain = String(rest[rest.index(after: at)...])
            rest = rest[..<at]
        }
        // An empty path is refused before it is made absolute (it would become the working directory).
        guard !rest.isEmpty, !self.id.isEmpty, !self.domain.isEmpty, !self.id.contains("/") else { return nil }
        self.path = absolutePath(String(rest))
    }
}

/// `path` if it is absolute, else `path` under the working directory. Checked byte-wise: `hasPrefix("/")`
/// compares characters, and "/" followed by a combining mark is not the character "/".
func absolutePath(_ path: String) -> String {
    path.utf8.first == UInt8(ascii: "/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}

/// `HOST:PORT` or `[IPV6]:PORT`.
struct TCPAddress: ExpressibleByArgument, CustomStringConvertible {
    var host: String
    var port: Int

    /// `HOST:PORT`, IPv6 hosts in brackets: what ``init(argument:)`` reads.
    var description: String { self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)" }

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    init?(argument: String) {
        guard let colon = argument.lastIndex(of: ":"), let port = Int(argument[argument.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = argument[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty else { return nil }
        self.host = String(host)
        self.port = port
    }
}

/// A byte count with an optional binary suffix: `4096`, `64KiB`, `512MiB`, `1GiB` (`K`, `M`, `G`, `T` and
/// `KB`… are read as binary too).
struct ByteCount: ExpressibleByArgument {
    var bytes: Int

    init(_ bytes: Int) { self.bytes = bytes }

    init?(argument: String) {
        let digits = argument.prefix(while: { $0.isNumber })
        guard let value = Int(digits), value >= 0 else { return nil }
        let multipliers: [String: Int] = [
            "": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MB": 1 << 20, "MIB": 1 << 20,
            "G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30, "T": 1 << 40, "TB": 1 << 40, "TIB": 1 << 40,
        ]
        guard let multiplier = multipliers[argument.dropFirst(digits.count).uppercased()] else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { return nil }
        self.bytes = bytes
    }
}

extension SharingUnit: ExpressibleByArgument {}
