import ArgumentParser
import Foundation
import Logging
import NIOCore
import PageCache
import PageShareServer
import Yams

/// The daemon's effective configuration: defaults, then the YAML file (`--config`), then `PAGESHARE_*`
/// environment variables, then command-line flags, each overriding the one before. Every key has one parser,
/// used for all three sources, so a bad value fails the start with the same message naming where it came
/// from (`config.yaml: cacheSize: ...`, `PAGESHARE_CACHE_SIZE: ...`, `--cache-size: ...`).
struct ServeSettings {
    /// What the daemon is made of; its defaults are the library's (``DaemonConfiguration``).
    var daemon = DaemonConfiguration()
    /// TCP listeners (with ``unixSockets`` and socket activation they make `daemon.server.listeners`).
    var listen: [TCPAddress] = DaemonConfiguration().server.listeners.compactMap {
        guard case .tcp(let host, let port) = $0 else { return nil }
        return TCPAddress(host: host, port: port)
    }
    /// Whether `listen` was set (file, environment or flag): with socket activation the default is dropped.
    var listenConfigured = false
    var unixSockets: [String] = []
    var socketMode: UInt16 = 0o660
    var tlsCert: String?
    var tlsKey: String?
    var logLevel = Logger.Level.info
    var logFormat = StructuredLogHandler.Format.logfmt
    /// Fingerprint mode and verification of the images given as `--image ID=PATH[@DOMAIN]`.
    var fingerprint = ImageRecord.Fingerprint.auto
    var verify = false

    /// A setting, by the name the config file uses; its environment variable and flag are derived from it.
    struct Key: Sendable {
        let name: String
        let help: String
        let isList: Bool
        let apply: @Sendable (inout ServeSettings, [String]) throws -> Void
        /// The setting's value as `--print-config` prints it; nil when unset (the key is left out).
        let value: @Sendable (ServeSettings) -> (any NodeRepresentable)?

        /// `cacheSize` → `PAGESHARE_CACHE_SIZE`.
        var environmentName: String { "PAGESHARE_" + Self.words(self.name).joined(separator: "_").uppercased() }
        /// `cacheSize` → `--cache-size`.
        var flagName: String {
            Self.shortFlags[self.name] ?? "--" + Self.words(self.name).joined(separator: "-").lowercased()
        }

        /// Flags not spelled like their key (one socket per flag; the directory's flag is short).
        private static let shortFlags = ["unixSockets": "--unix-socket", "imageDirectory": "--image-dir"]

        private static func words(_ name: String) -> [String] {
            var words: [String] = [""]
            for character in name {
                if character.isUppercase { words.append("") }
                words[words.count - 1].append(character)
            }
            return words
        }
    }

    /// Every key but `images` (a list of mappings, config file only; flags add `--image`).
    static let keys: [Key] = [
        .list("listen", "TCP listeners HOST:PORT", value: { $0.listen.map(\.description) }) { settings, values in
            settings.listen = try values.map { try TCPAddress(argument: $0).orThrow("not HOST:PORT") }
            settings.listenConfigured = true
        },
        .list("unixSockets", "unix domain socket paths", value: { $0.unixSockets }) { $0.unixSockets = $1 },
        .scalar(
            "socketMode", "permission bits of the unix sockets, octal", value: { "0" + String($0.socketMode, radix: 8) }
        ) {
            let mode = try UInt16($1, radix: 8).orThrow("not octal permission bits")
            guard mode <= 0o777 else { throw SettingError("not octal permission bits") }
            $0.socketMode = mode
        },
        .scalar("tlsCert", "PEM certificate chain (TCP listeners speak TLS)", value: { $0.tlsCert }) {
            $0.tlsCert = $1
        },
        .scalar("tlsKey", "PEM private key of tlsCert", value: { $0.tlsKey }) { $0.tlsKey = $1 },
        .scalar("cacheSize", "page data budget, e.g. 512MiB", value: { $0.daemon.cache.budgetBytes }) {
            $0.daemon.cache.budgetBytes = try ByteCount(argument: $1).orThrow("not a byte count like 1GiB").bytes
        },
        .scalar("pageSize", "cache page size, 4KiB to 64KiB", value: { $0.daemon.cache.pageSize }) {
            $0.daemon.cache.pageSize = try ByteCount(argument: $1).orThrow("not a byte count like 4KiB").bytes
        },
        .scalar("readaheadPages", "pages read ahead (0: off)", value: { $0.daemon.cache.readaheadPages }) {
            $0.daemon.cache.readaheadPages = try Self.count($1, minimum: 0)
        },
        .scalar(
            "sharing", "what a domain shares: file (equal files) or chunk (equal content-defined chunks)",
            value: { $0.daemon.cache.sharing.rawValue }
        ) { $0.daemon.cache.sharing = try SharingUnit(rawValue: $1).orThrow("must be file or chunk") },
        .list(
            "domainSharing", "DOMAIN=file|chunk: a domain that shares otherwise than sharing says",
            value: { $0.daemon.cache.domainSharing.map { "\($0.key.name)=\($0.value.rawValue)" }.sorted() }
        ) { settings, values in
            settings.daemon.cache.domainSharing = [:]
            for value in values {
                let parts = value.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, let domain = try? TrustDomain(parts[0]),
                    let unit = SharingUnit(rawValue: parts[1])
                else { throw SettingError("\(value): not DOMAIN=file or DOMAIN=chunk") }
                settings.daemon.cache.domainSharing[domain] = unit
            }
        },
        .scalar(
            "chunkSize", "average content-defined chunk size, 1KiB to 64KiB (sharing: chunk)",
            value: { $0.daemon.cache.chunkAverageBytes }
        ) {
            $0.daemon.cache.chunkAverageBytes = try ByteCount(argument: $1).orThrow("not a byte count like 4KiB").bytes
        },
        .scalar("maxConnections", "connections open at once", value: { $0.daemon.server.maximumConnections }) {
            $0.daemon.server.maximumConnections = try Self.count($1)
        },
        .scalar(
            "maxStreams", "HTTP/2 concurrent streams per connection",
            value: { $0.daemon.server.maximumConcurrentStreams }
        ) { $0.daemon.server.maximumConcurrentStreams = try Self.count($1) },
        .scalar("maxRanges", "ranges per request; more is served whole", value: { $0.daemon.limits.maximumRanges }) {
            $0.daemon.limits.maximumRanges = try Self.count($1)
        },
        .seconds(
            "idleTimeout", "seconds with nothing read and no write completed before a connection closes",
            \.daemon.server.idleTimeout),
        .seconds("headerTimeout", "seconds an HTTP/1.1 request head may take", \.daemon.server.headerTimeout),
        .seconds("bodyTimeout", "seconds an HTTP/1.1 request body may take", \.daemon.server.bodyTimeout),
        .scalar(
            "maxConnectionsPerAddress", "connections one client address may hold (0: no limit)",
            value: { $0.daemon.server.maximumConnectionsPerAddress }
        ) { $0.daemon.server.maximumConnectionsPerAddress = try Self.count($1, minimum: 0) },
        .scalar(
            "sendBudget", "response bytes produced and not yet sent, daemon-wide, e.g. 64MiB",
            value: { $0.daemon.sendBudgetBytes }
        ) {
            $0.daemon.sendBudgetBytes = try ByteCount(argument: $1).orThrow("not a byte count like 64MiB").bytes
        },
        .seconds("sendTimeout", "seconds a response's writes may make no progress", \.daemon.sendTimeout),
        .seconds(
            "shutdownGrace", "seconds in-flight requests get on shutdown", \.daemon.server.shutdownGracePeriod,
            minimum: 0),
        .scalar("threads", "event loop threads", value: { $0.daemon.server.threads }) {
            $0.daemon.server.threads = try Self.count($1)
        },
        .scalar("logLevel", "trace, debug, info, notice, warning, error, critical", value: { $0.logLevel.rawValue }) {
            $0.logLevel = try Logger.Level(rawValue: $1).orThrow("not a log level")
        },
        .scalar("logFormat", "logfmt or json", value: { $0.logFormat.rawValue }) {
            $0.logFormat = try StructuredLogHandler.Format(rawValue: $1).orThrow("must be logfmt or json")
        },
        .scalar(
            "tokensFile", "bearer tokens (sha256) and roles; without it, loopback only",
            value: { $0.daemon.tokensFile }
        ) { $0.daemon.tokensFile = $1 },
        .scalar("publicMetrics", "serve /metrics without a token", value: { $0.daemon.publicMetrics }) {
            $0.daemon.publicMetrics = try Self.bool($1)
        },
        .scalar(
            "metricsPerImage", "export pageshare_image_* series labelled by image", value: { $0.daemon.metricsPerImage }
        ) { $0.daemon.metricsPerImage = try Self.bool($1) },
        .scalar(
            "authFailureLimit", "failed authentications per client per minute before 429",
            value: { $0.daemon.authFailureLimit }
        ) { $0.daemon.authFailureLimit = try Self.count($1) },
        .scalar(
            "allowUnauthenticatedRemote", "listen beyond loopback without tokens",
            value: { $0.daemon.server.allowUnauthenticatedRemote }
        ) { $0.daemon.server.allowUnauthenticatedRemote = try Self.bool($1) },
        .scalar("stateDir", "where admin-API changes are kept across restarts", value: { $0.daemon.stateDirectory }) {
            $0.daemon.stateDirectory = $1
        },
        .scalar(
            "imageDirectory", "attach every *.erofs/*.img file here (subdirectories name domains) and watch it",
            value: { $0.daemon.imageDirectory }
        ) {
            guard $1.utf8.first == UInt8(ascii: "/") else { throw SettingError("must be an absolute path") }
            $0.daemon.imageDirectory = $1
        },
        .scalar("fingerprint", "auto, xattr, digest or none, for --image images", value: { $0.fingerprint.rawValue }) {
            $0.fingerprint = try ImageRecord.Fingerprint(rawValue: $1).orThrow("must be auto, xattr, digest or none")
        },
        .scalar("verify", "verify --image images' files before sharing them", value: { $0.verify }) {
            $0.verify = try Self.bool($1)
        },
    ]

    // MARK: Layers

    /// Applies the YAML configuration `text` (from `source`, for messages).
    /// - Throws: ``SettingError`` naming the file and key.
    mutating func applyConfigFile(_ text: String, source: String) throws {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw SettingError("\(source): not valid YAML: \(error)")
        }
        guard let node else { return }
        guard let mapping = node.mapping else { throw SettingError("\(source): the document must be a mapping") }
        for (keyNode, value) in mapping {
            let name = keyNode.string ?? ""
            if name == "images" {
                do {
                    let configured = try YAMLDecoder().decode([ConfiguredImage].self, from: value)
                    self.daemon.images += configured.map(\.record)
                    self.daemon.requiredImages.formUnion(configured.filter(\.required).map(\.record.id))
                } catch {
                    throw SettingError(
                        "\(source): images\(DecodingFailure.describe(error).drop { $0 != "[" && $0 != ":" })")
                }
                continue
            }
            guard let key = Self.keys.first(where: { $0.name == name }) else {
                throw SettingError("\(source): unknown key \(name)")
            }
            let values: [String]?
            if key.isList {
                values = value.sequence.map { $0.compactMap(\.string) } ?? value.string.map { [$0] }
            } else {
                values = value.string.map { [$0] }
            }
            guard let values, !(key.isList && value.sequence.map { $0.count != values.count } ?? false) else {
                throw SettingError("\(source): \(name): expected \(key.isList ? "a list of strings" : "a scalar")")
            }
            try self.apply(key, values, source: "\(source): \(name)")
        }
    }

    /// Applies the `PAGESHARE_*` variables of `environment` (lists comma-separated).
    mutating func applyEnvironment(_ environment: [String: String]) throws {
        for key in Self.keys {
            guard let text = environment[key.environmentName] else { continue }
            let values =
                key.isList ? text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } : [text]
            try self.apply(key, values, source: key.environmentName)
        }
    }

    /// Applies command-line values of `key`.
    mutating func applyFlag(_ key: Key, _ values: [String]) throws {
        try self.apply(key, values, source: key.flagName)
    }

    /// The help of key `name` for its flag: the key's help, `note`, and the default.
    static func help(_ name: String, _ note: String? = nil) -> ArgumentHelp {
        guard let key = Self.keys.first(where: { $0.name == name }) else { return ArgumentHelp("") }
        var text = key.help
        if let note { text += "; " + note }
        if let value = key.value(ServeSettings()), let node = try? value.represented() {
            let shown = node.sequence.map { $0.compactMap(\.string).joined(separator: ",") } ?? node.string ?? ""
            if !shown.isEmpty { text += " (default \(shown))" }
        }
        return ArgumentHelp(text)
    }

    private mutating func apply(_ key: Key, _ values: [String], source: String) throws {
        do {
            try key.apply(&self, values)
        } catch let error as SettingError {
            throw SettingError("\(source): \(error.description)")
        }
    }

    /// Checks what single keys cannot: pairs and the images.
    func validate() throws {
        guard (self.tlsCert == nil) == (self.tlsKey == nil) else {
            throw SettingError("tlsCert and tlsKey go together")
        }
        var seen: Set<String> = []
        for image in self.daemon.images {
            do {
                try image.validate()
            } catch {
                throw SettingError("images: \(image.id): \(error.message)")
            }
            guard seen.insert(image.id).inserted else { throw SettingError("images: \(image.id) is listed twice") }
        }
    }

    // MARK: Parsers

    fileprivate static func count(_ text: String, minimum: Int = 1) throws -> Int {
        guard let value = Int(text), value >= minimum else { throw SettingError("must be an integer ≥ \(minimum)") }
        return value
    }

    private static func bool(_ text: String) throws -> Bool {
        switch text.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw SettingError("must be true or false")
        }
    }
}

extension ServeSettings.Key {
    static func scalar(
        _ name: String, _ help: String, value: @escaping @Sendable (ServeSettings) -> (any NodeRepresentable)?,
        _ apply: @escaping @Sendable (inout ServeSettings, String) throws -> Void
    ) -> Self {
        Self(
            name: name, help: help, isList: false,
            apply: { settings, values in try apply(&settings, values.last ?? "") }, value: value)
    }

    /// A number of seconds kept as a `TimeAmount` at `path`.
    static func seconds(
        _ name: String, _ help: String, _ path: any WritableKeyPath<ServeSettings, TimeAmount> & Sendable,
        minimum: Int = 1
    ) -> Self {
        .scalar(name, help, value: { Int($0[keyPath: path].nanoseconds / 1_000_000_000) }) {
            $0[keyPath: path] = .seconds(Int64(try ServeSettings.count($1, minimum: minimum)))
        }
    }

    static func list(
        _ name: String, _ help: String, value: @escaping @Sendable (ServeSettings) -> [String],
        _ apply: @escaping @Sendable (inout ServeSettings, [String]) throws -> Void
    ) -> Self {
        Self(name: name, help: help, isList: true, apply: apply, value: value)
    }
}

/// A configuration value that cannot be used: where it came from and why.
struct SettingError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension Optional {
    /// The value, or a ``SettingError`` with `reason`.
    func orThrow(_ reason: String) throws -> Wrapped {
        guard let self else { throw SettingError(reason) }
        return self
    }
}

extension ServeSettings {
    /// The effective configuration as a config file (`pageshare serve --print-config`): every key, in the
    /// order of ``keys`` (unset ones left out), then the images. It reads back to the same settings.
    func yaml() throws -> String {
        var pairs: [(Node, Node)] = []
        for key in Self.keys {
            guard let value = key.value(self) else { continue }
            pairs.append((Node(key.name), try value.represented()))
        }
        let configured = self.daemon.images.map {
            ConfiguredImage(record: $0, required: self.daemon.requiredImages.contains($0.id))
        }
        let images = try Yams.compose(yaml: YAMLEncoder().encode(configured)) ?? Node([Node]())
        pairs.append((Node("images"), images))
        return try Yams.serialize(node: Node.mapping(Node.Mapping(pairs)))
    }
}
