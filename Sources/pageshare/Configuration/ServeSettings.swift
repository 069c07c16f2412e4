import Foundation
import Logging
import NIOCore
import PageShareServer
import Yams

/// The daemon's effective configuration: defaults, then the YAML file (`--config`), then `PAGESHARE_*`
/// environment variables, then command-line flags, each overriding the one before. Every key has one parser,
/// used for all three sources, so a bad value fails the start with the same message naming where it came
/// from (`config.yaml: cacheSize: ...`, `PAGESHARE_CACHE_SIZE: ...`, `--cache-size: ...`).
struct ServeSettings {
    var listen: [TCPAddress] = [TCPAddress(host: "127.0.0.1", port: 8480)]
    /// Whether `listen` was set (file, environment or flag): with socket activation the default is dropped.
    var listenConfigured = false
    var unixSockets: [String] = []
    var socketMode: UInt16 = 0o660
    var tlsCert: String?
    var tlsKey: String?
    var cacheSize = 1 << 30
    var pageSize = 4096
    var readaheadPages = 16
    var maxConnections = 10_000
    var maxStreams = 128
    var maxRanges = 64
    var idleTimeout = 60
    var headerTimeout = 30
    var bodyTimeout = 60
    var maxConnectionsPerAddress = 0
    var sendBudget = 64 << 20
    var sendTimeout = 60
    var shutdownGrace = 10
    var threads = System.coreCount
    var logLevel = Logger.Level.info
    var logFormat = StructuredLogHandler.Format.logfmt
    var tokensFile: String?
    var publicMetrics = false
    var metricsPerImage = false
    var authFailureLimit = 10
    var allowUnauthenticatedRemote = false
    var stateDir: String?
    /// Attach every image file found here (subdirectories name domains), watching for more.
    var imageDirectory: String?
    /// Fingerprint mode and verification of the images given as `--image ID=PATH[@DOMAIN]`.
    var fingerprint = ImageRecord.Fingerprint.auto
    var verify = false
    /// Images attached at every start (config file `images:` and `--image`).
    var images: [ImageRecord] = []
    /// Ids of the images the daemon does not start without (`required: true`).
    var requiredImages: Set<String> = []

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
        .scalar("cacheSize", "page data budget, e.g. 512MiB", value: { $0.cacheSize }) {
            $0.cacheSize = try ByteCount(argument: $1).orThrow("not a byte count like 1GiB").bytes
        },
        .scalar("pageSize", "cache page size, 4KiB to 64KiB", value: { $0.pageSize }) {
            $0.pageSize = try ByteCount(argument: $1).orThrow("not a byte count like 4KiB").bytes
        },
        .scalar("readaheadPages", "pages read ahead (0: off)", value: { $0.readaheadPages }) {
            $0.readaheadPages = try Self.count($1, minimum: 0)
        },
        .scalar("maxConnections", "connections open at once", value: { $0.maxConnections }) {
            $0.maxConnections = try Self.count($1)
        },
        .scalar("maxStreams", "HTTP/2 concurrent streams per connection", value: { $0.maxStreams }) {
            $0.maxStreams = try Self.count($1)
        },
        .scalar("maxRanges", "ranges per request; more is served whole", value: { $0.maxRanges }) {
            $0.maxRanges = try Self.count($1)
        },
        .scalar("idleTimeout", "seconds before an idle connection closes", value: { $0.idleTimeout }) {
            $0.idleTimeout = try Self.count($1)
        },
        .scalar("headerTimeout", "seconds an HTTP/1.1 request head may take", value: { $0.headerTimeout }) {
            $0.headerTimeout = try Self.count($1)
        },
        .scalar("bodyTimeout", "seconds an HTTP/1.1 request body may take", value: { $0.bodyTimeout }) {
            $0.bodyTimeout = try Self.count($1)
        },
        .scalar(
            "maxConnectionsPerAddress", "connections one client address may hold (0: no limit)",
            value: { $0.maxConnectionsPerAddress }
        ) { $0.maxConnectionsPerAddress = try Self.count($1, minimum: 0) },
        .scalar(
            "sendBudget", "response bytes produced and not yet sent, daemon-wide, e.g. 64MiB", value: { $0.sendBudget }
        ) {
            $0.sendBudget = try ByteCount(argument: $1).orThrow("not a byte count like 64MiB").bytes
        },
        .scalar("sendTimeout", "seconds a response's writes may make no progress", value: { $0.sendTimeout }) {
            $0.sendTimeout = try Self.count($1)
        },
        .scalar("shutdownGrace", "seconds in-flight requests get on shutdown", value: { $0.shutdownGrace }) {
            $0.shutdownGrace = try Self.count($1, minimum: 0)
        },
        .scalar("threads", "event loop threads", value: { $0.threads }) { $0.threads = try Self.count($1) },
        .scalar("logLevel", "trace, debug, info, notice, warning, error, critical", value: { $0.logLevel.rawValue }) {
            $0.logLevel = try Logger.Level(rawValue: $1).orThrow("not a log level")
        },
        .scalar("logFormat", "logfmt or json", value: { $0.logFormat.rawValue }) {
            $0.logFormat = try StructuredLogHandler.Format(rawValue: $1).orThrow("must be logfmt or json")
        },
        .scalar("tokensFile", "bearer tokens (sha256) and roles; without it, loopback only", value: { $0.tokensFile }) {
            $0.tokensFile = $1
        },
        .scalar("publicMetrics", "serve /metrics without a token", value: { $0.publicMetrics }) {
            $0.publicMetrics = try Self.bool($1)
        },
        .scalar("metricsPerImage", "export pageshare_image_* series labelled by image", value: { $0.metricsPerImage }) {
            $0.metricsPerImage = try Self.bool($1)
        },
        .scalar(
            "authFailureLimit", "failed authentications per client per minute before 429",
            value: { $0.authFailureLimit }
        ) {
            $0.authFailureLimit = try Self.count($1)
        },
        .scalar(
            "allowUnauthenticatedRemote", "listen beyond loopback without tokens",
            value: { $0.allowUnauthenticatedRemote }
        ) {
            $0.allowUnauthenticatedRemote = try Self.bool($1)
        },
        .scalar("stateDir", "where admin-API changes are kept across restarts", value: { $0.stateDir }) {
            $0.stateDir = $1
        },
        .scalar(
            "imageDirectory", "attach every *.erofs/*.img file here (subdirectories name domains) and watch it",
            value: { $0.imageDirectory }
        ) {
            guard $1.utf8.first == UInt8(ascii: "/") else { throw SettingError("must be an absolute path") }
            $0.imageDirectory = $1
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
                    self.images += configured.map(\.record)
                    self.requiredImages.formUnion(configured.filter(\.required).map(\.record.id))
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

    /// Applies command-line values by key name.
    mutating func applyFlag(_ name: String, _ values: [String]) throws {
        let key = Self.keys.first { $0.name == name }!
        try self.apply(key, values, source: key.flagName)
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
        for image in self.images {
            do {
                try image.validate()
            } catch {
                throw SettingError("images: \(image.id): \(error.message)")
            }
            guard seen.insert(image.id).inserted else { throw SettingError("images: \(image.id) is listed twice") }
        }
    }

    // MARK: Parsers

    private static func count(_ text: String, minimum: Int = 1) throws -> Int {
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
        let configured = self.images.map {
            ConfiguredImage(record: $0, required: self.requiredImages.contains($0.id))
        }
        let images = try Yams.compose(yaml: YAMLEncoder().encode(configured)) ?? Node([Node]())
        pairs.append((Node("images"), images))
        return try Yams.serialize(node: Node.mapping(Node.Mapping(pairs)))
    }
}
