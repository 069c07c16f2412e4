import Crypto
import Foundation
import Yams

/// The tokens file: bearer tokens stored as their sha256 (never in clear), each with a role, and optional
/// unix-socket peer mappings (peer uid → role). YAML:
///
/// ```yaml
/// tokens:
///   - name: operator
///     sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
///     role: admin
///   - name: team-a
///     sha256: ...
///     role: tenant
///     domains: [team-a]
/// unixPeers:
///   - uid: 1000
///     role: tenant
///     domains: [team-a]
/// ```
///
/// `pageshare token new` makes a token and prints its hash. Tokens are random 256-bit secrets, so one sha256
/// round is enough at rest: a stolen file reveals no token.
public struct AccessTokens: Sendable {
    struct Entry: Sendable {
        var hash: [UInt8]
        var caller: Caller
    }

    private(set) var entries: [Entry] = []
    private(set) var unixPeers: [UInt32: Caller] = [:]

    /// An empty table (no token is accepted).
    public init() {}

    /// Reads and checks the tokens file at `path`.
    /// - Throws: ``AccessTokensError`` naming the entry and the reason.
    public init(contentsOf path: String) throws(AccessTokensError) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw AccessTokensError("cannot read tokens file \(path): \(error.localizedDescription)")
        }
        try self.init(yaml: text, source: path)
    }

    init(yaml: String, source: String) throws(AccessTokensError) {
        let file: FileModel
        do {
            file = try YAMLDecoder().decode(FileModel.self, from: yaml)
        } catch {
            throw AccessTokensError("\(source): \(DecodingFailure.describe(error))")
        }
        for (index, token) in (file.tokens ?? []).enumerated() {
            let place = "\(source): tokens[\(index)] (\(token.name))"
            guard let hash = Self.hexBytes(token.sha256), hash.count == SHA256.byteCount else {
                throw AccessTokensError("\(place): sha256 must be 64 hex digits")
            }
            guard !self.entries.contains(where: { $0.hash == hash }) else {
                throw AccessTokensError("\(place): the same token is listed twice")
            }
            self.entries.append(Entry(hash: hash, caller: try token.caller(place)))
        }
        for (index, peer) in (file.unixPeers ?? []).enumerated() {
            let place = "\(source): unixPeers[\(index)] (uid \(peer.uid))"
            guard self.unixPeers[peer.uid] == nil else { throw AccessTokensError("\(place): uid listed twice") }
            self.unixPeers[peer.uid] = try peer.caller(place)
        }
    }

    /// The caller whose token is `token`. Every entry is compared, each in constant time, so the time
    /// taken does not depend on which entry (if any) matches or how much of a hash does.
    public func caller(forToken token: some StringProtocol) -> Caller? {
        let presented = Array(SHA256.hash(data: Array(token.utf8)))
        var found: Caller?
        for entry in self.entries {
            var difference: UInt8 = 0
            for index in 0..<SHA256.byteCount { difference |= entry.hash[index] ^ presented[index] }
            if difference == 0 { found = entry.caller }
        }
        return found
    }

    /// The caller a unix-socket peer with `uid` is mapped to.
    public func caller(forPeerUID uid: UInt32) -> Caller? { self.unixPeers[uid] }

    /// The sha256 of `token` in hex, as the tokens file stores it.
    public static func hash(_ token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    private static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) else {
                return nil
            }
            bytes.append(byte)
        }
        return bytes
    }

    private struct FileModel: Decodable {
        var tokens: [TokenModel]?
        var unixPeers: [PeerModel]?
    }

    private enum Role: String, Decodable { case admin, tenant }

    private struct TokenModel: Decodable {
        var name: String
        var sha256: String
        var role: Role
        var domains: [String]?
        func caller(_ place: String) throws(AccessTokensError) -> Caller {
            try Self.caller(role: self.role, name: self.name, domains: self.domains, place)
        }
        static func caller(
            role: Role, name: String, domains: [String]?, _ place: String
        ) throws(AccessTokensError) -> Caller {
            switch role {
            case .admin:
                guard domains == nil else { throw AccessTokensError("\(place): an admin reads every domain") }
                return .admin(name: name)
            case .tenant:
                guard let domains, !domains.isEmpty else {
                    throw AccessTokensError("\(place): a tenant needs one or more domains")
                }
                return .tenant(name: name, domains: Set(domains))
            }
        }
    }

    private struct PeerModel: Decodable {
        var uid: UInt32
        var role: Role
        var domains: [String]?
        func caller(_ place: String) throws(AccessTokensError) -> Caller {
            try TokenModel.caller(role: self.role, name: "uid:\(self.uid)", domains: self.domains, place)
        }
    }
}

/// A tokens file that cannot be used, with the file, entry and reason.
public struct AccessTokensError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
