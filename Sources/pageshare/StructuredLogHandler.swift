import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A swift-log handler writing one line per record to standard error, as logfmt
/// (`time=… level=info msg="…" key=value`) or as a JSON object. Metadata values are written as given: the
/// daemon never logs secrets (tokens, keys) in the first place.
struct StructuredLogHandler: LogHandler {
    enum Format: String, CaseIterable { case logfmt, json }

    let label: String
    let format: Format
    /// The daemon-wide level, changed by a configuration reload (SIGHUP).
    let level: LogLevelControl
    /// A level set on one logger (`logger.logLevel = …`) wins over the daemon-wide one.
    private var overriddenLevel: Logger.Level?
    var metadata: Logger.Metadata = [:]

    init(label: String, format: Format, level: LogLevelControl) {
        self.label = label
        self.format = format
        self.level = level
    }

    var logLevel: Logger.Level {
        get { self.overriddenLevel ?? self.level.current }
        set { self.overriddenLevel = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("time", Self.timestamp()), ("level", event.level.rawValue), ("logger", self.label),
            ("msg", event.message.description),
        ]
        let merged = self.metadata.merging(event.metadata ?? [:]) { $1 }
        for key in merged.keys.sorted() { fields.append((key, "\(merged[key]!)")) }
        let line: String
        switch self.format {
        case .logfmt:
            line = fields.map { "\($0.0)=\(Self.logfmtValue($0.1))" }.joined(separator: " ")
        case .json:
            line = "{" + fields.map { "\(Self.jsonString($0.0)):\(Self.jsonString($0.1))" }.joined(separator: ",") + "}"
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    private static func timestamp() -> String {
        // ISO8601FormatStyle formats in GMT unless told otherwise.
        Date.now.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true)) + "Z"
    }

    private static func logfmtValue(_ value: String) -> String {
        let plain =
            !value.isEmpty
            && value.unicodeScalars.allSatisfy { $0.value > 0x20 && $0 != "=" && $0 != "\"" && $0.value < 0x7F }
        return plain ? value : Self.jsonString(value)
    }

    /// `value` as a JSON string literal (also logfmt's quoted form).
    static func jsonString(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// The log level every ``StructuredLogHandler`` of the daemon follows unless a logger sets its own.
final class LogLevelControl: Sendable {
    /// The level as its rank (trace 0 … critical 6): read on every log call from every thread (each request
    /// asks whether its debug line is wanted), so an atomic load rather than a lock all threads share.
    private let level: Atomic<Int>

    init(_ level: Logger.Level) { self.level = Atomic(Self.rank(of: level)) }

    var current: Logger.Level {
        get { Self.level(ranked: self.level.load(ordering: .relaxed)) }
        set { self.level.store(Self.rank(of: newValue), ordering: .relaxed) }
    }

    private static func rank(of level: Logger.Level) -> Int {
        switch level {
        case .trace: 0
        case .debug: 1
        case .info: 2
        case .notice: 3
        case .warning: 4
        case .error: 5
        case .critical: 6
        }
    }

    private static func level(ranked rank: Int) -> Logger.Level {
        switch rank {
        case 0: .trace
        case 1: .debug
        case 2: .info
        case 3: .notice
        case 4: .warning
        case 5: .error
        default: .critical
        }
    }
}
