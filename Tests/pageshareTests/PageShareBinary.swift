import EROFSTestSupport
import Foundation

/// The built `pageshare` executable, run as a user would run it.
enum PageShareBinary {
    /// `.build/<config>/pageshare`, next to the test bundle.
    static var path: String {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("pageshare").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
            .appendingPathComponent(".build/debug/pageshare").path
    }

    static func run(_ arguments: [String]) throws -> (status: Int32, output: [UInt8], error: String) {
        try EROFSTestSupport.run(self.path, arguments)
    }

    /// `pageshare token hash` of `token`: the hex sha256 for a tokens file.
    static func hashToken(_ token: String) throws -> String {
        let result = try EROFSTestSupport.run(self.path, ["token", "hash"], input: token)
        return String(decoding: result.output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
