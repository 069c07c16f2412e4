import EROFSTestSupport
import Foundation

/// `pageshare serve` as a child process on a unix socket (and an ephemeral loopback port), driven by curl.
/// `@unchecked Sendable`: the process is started in `init` and only signalled or waited for afterwards.
final class Daemon: @unchecked Sendable {
    let process = Process()
    let socket: String
    let log: String

    /// Starts `pageshare serve` with `arguments` plus a unix socket under `directory`; waits for `/readyz`.
    init(directory: String, arguments: [String], name: String = "daemon", environment: [String: String] = [:]) throws {
        self.socket = directory + "/\(name).sock"
        self.log = directory + "/\(name).log"
        _ = FileManager.default.createFile(atPath: self.log, contents: nil)
        self.process.executableURL = URL(fileURLWithPath: PageShareBinary.path)
        self.process.arguments =
            ["serve", "--listen", "127.0.0.1:0", "--unix-socket", self.socket, "--cache-size", "64MiB"] + arguments
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: self.log))
        if !environment.isEmpty {
            self.process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        self.process.standardOutput = output
        self.process.standardError = output
        try self.process.run()
        for _ in 0..<500 {
            if self.request("GET", "/readyz").status == 200 { return }
            guard self.process.isRunning else { break }
            Thread.sleep(forTimeInterval: 0.02)
        }
        let text = (try? String(contentsOfFile: self.log, encoding: .utf8)) ?? ""
        throw DaemonError(description: "pageshare serve did not become ready: \(text)")
    }

    /// One request over the unix socket: the status (0: no answer) and the body.
    @discardableResult
    func request(_ method: String, _ path: String, json: String? = nil, token: String? = nil) -> (
        status: Int, body: String
    ) {
        var arguments = ["-s", "-m", "10", "--unix-socket", self.socket, "-X", method, "-w", "\n%{http_code}"]
        if let json { arguments += ["-H", "content-type: application/json", "--data-binary", json] }
        if let token { arguments += ["-H", "authorization: Bearer \(token)"] }
        arguments.append("http://localhost" + path)
        guard let result = try? run(which("curl")!, arguments) else { return (0, "") }
        let text = String(decoding: result.output, as: UTF8.self)
        let status = Int(text.split(separator: "\n").last ?? "") ?? 0
        return (status, String(text.dropLast(String(status).count)))
    }

    func kill(_ signal: Int32) { Foundation.kill(self.process.processIdentifier, signal) }

    /// SIGTERM and wait.
    func stop() {
        guard self.process.isRunning else { return }
        self.kill(SIGTERM)
        self.process.waitUntilExit()
    }
}

struct DaemonError: Error, CustomStringConvertible {
    var description: String
}
