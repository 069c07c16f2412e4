import Foundation
import PageCache
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// What the daemon restores on start: the images attached through the admin API and the domain quotas.
public struct PersistentState: Codable, Sendable, Equatable {
    public var version = 1
    public var images: [ImageRecord] = []
    /// Quota in bytes by domain name.
    public var quotas: [String: Int] = [:]

    public init(images: [ImageRecord] = [], quotas: [String: Int] = [:]) {
        self.images = images
        self.quotas = quotas
    }
}

/// The state directory: one JSON file, `state.json`, replaced atomically on every change (write a temporary
/// file, fsync it, rename it over the old one, fsync the directory), so that after a crash at any moment the
/// file holds either the state before or the state after the change, and an acknowledged change survives.
public struct StateStore: Sendable {
    public let directory: String
    var file: String { self.directory + "/state.json" }

    /// Uses `directory`, creating it (mode 0700) if it is missing.
    /// - Throws: ``ControlError`` (`stateWriteFailed`) when it cannot be created.
    /// The directory must be writable now: a daemon that could not save the first admin attach should not
    /// start.
    public init(directory: String) throws(ControlError) {
        self.directory = directory
        // Created one component at a time, so that a refusal names the component and the reason.
        var prefix = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") {
            prefix += "/" + component
            guard mkdir(prefix, 0o700) == 0 || errno == EEXIST else {
                let reason = String(cString: strerror(errno)).lowercased()
                throw ControlError(
                    .stateWriteFailed,
                    "cannot create state directory \(directory): \(reason) (\(Self.describe(prefix)))")
            }
        }
        let probe = directory + "/.pageshare-write-test"
        let descriptor = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno)).lowercased()
            throw ControlError(
                .stateWriteFailed,
                "state directory \(directory) is not writable: \(reason) (\(Self.describe(directory)))")
        }
        close(descriptor)
        unlink(probe)
    }

    /// Owner and mode of `path` (or of its nearest existing parent), and who the daemon runs as.
    private static func describe(_ path: String) -> String {
        var current = path
        var info = stat()
        while stat(current, &info) != 0, let slash = current.lastIndex(of: "/"), slash != current.startIndex {
            current = String(current[..<slash])
        }
        return "\(current): owner uid \(info.st_uid), mode 0\(String(info.st_mode & 0o7777, radix: 8)); "
            + "running as uid \(geteuid())"
    }

    /// The saved state; an empty one when nothing was saved yet.
    /// - Throws: ``ControlError`` (`invalidRequest`) when the file exists but cannot be read or parsed, is of
    ///   another version than this daemon writes, or names one image id twice (hand edits).
    public func load() throws(ControlError) -> PersistentState {
        guard FileManager.default.fileExists(atPath: self.file) else { return PersistentState() }
        let data: Data
        let state: PersistentState
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: self.file))
            state = try JSONDecoder().decode(PersistentState.self, from: data)
        } catch {
            throw ControlError(.invalidRequest, "state file \(self.file) is unreadable: \(error)")
        }
        guard state.version == PersistentState().version else {
            throw ControlError(
                .invalidRequest,
                "state file \(self.file) has version \(state.version); this pageshare reads version "
                    + "\(PersistentState().version)")
        }
        var seen: Set<ByteKey> = []
        for record in state.images where !seen.insert(ByteKey(record.id)).inserted {
            let line = Self.line(ofSecond: record.id, in: String(decoding: data, as: UTF8.self))
            throw ControlError(
                .invalidRequest,
                "state file \(self.file)\(line.map { ":\($0)" } ?? ""): image id \(record.id) appears twice")
        }
        return state
    }

    /// The line (1-based) of the second `"id": ID` in `text`, for the error about a repeated id. Compared
    /// as bytes: `String.contains` would take `café` in NFD for the NFC one.
    private static func line(ofSecond id: String, in text: String) -> Int? {
        guard let encoded = try? JSONEncoder().encode(id) else { return nil }
        let needle = Array("\"id\":".utf8) + Array(encoded)
        var found = 0
        for (index, line) in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            .enumerated()
        {
            let compact = line.filter { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
            let matches =
                compact.count >= needle.count
                && (0...(compact.count - needle.count)).contains {
                    compact[$0..<$0 + needle.count].elementsEqual(needle)
                }
            if matches {
                found += 1
                if found == 2 { return index + 1 }
            }
        }
        return nil
    }

    /// Replaces the saved state with `state`, durably.
    /// - Throws: ``ControlError`` (`stateWriteFailed`); the previous state is then still in place.
    public func save(_ state: PersistentState) throws(ControlError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let temporary = self.file + ".tmp"
        do {
            let bytes = try encoder.encode(state)
            let descriptor = try FileDescriptor.open(
                FilePath(temporary), .writeOnly, options: [.create, .truncate, .closeOnExec],
                permissions: [.ownerReadWrite])
            try descriptor.closeAfter {
                _ = try descriptor.writeAll(bytes)
                guard fsync(descriptor.rawValue) == 0 else { throw Errno(rawValue: errno) }
            }
            guard rename(temporary, self.file) == 0 else { throw Errno(rawValue: errno) }
            let directory = try FileDescriptor.open(FilePath(self.directory), .readOnly, options: [.directory])
            try directory.closeAfter {
                guard fsync(directory.rawValue) == 0 else { throw Errno(rawValue: errno) }
            }
        } catch {
            throw ControlError(.stateWriteFailed, "cannot write \(self.file): \(error)")
        }
    }
}
