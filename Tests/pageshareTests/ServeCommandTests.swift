import EROFSTestSupport
import Foundation
import Testing

/// `pageshare serve` as an operator runs it: configuration layers, the state directory across `kill -9`,
/// SIGHUP, and the loopback rule.
@Suite("pageshare serve: configuration, state, signals", .serialized)
struct ServeCommandTests {
    /// `pageshare serve --print-config …` with `environment` set; status, stdout, stderr.
    static func printConfig(_ arguments: [String], environment: [String] = []) throws -> (Int32, String, String) {
        let result = try run(
            "/usr/bin/env", environment + [PageShareBinary.path, "serve", "--print-config"] + arguments)
        return (result.status, String(decoding: result.output, as: UTF8.self), result.error)
    }

    @Test("defaults < config file < PAGESHARE_* < flags; --print-config shows the result")
    func configurationLayers() throws {
        let directory = try TemporaryDirectory("config")
        defer { directory.remove() }
        let config = directory.path + "/pageshare.yaml"
        try TestTree.write(
            config,
            Array(
                """
                listen: [127.0.0.1:9000, "[::1]:9001"]
                cacheSize: 2GiB
                maxRanges: 8
                logFormat: json
                images:
                  - {id: app, path: /images/app.img, domain: team, fingerprint: digest}
                """.utf8))
        let (status, text, error) = try Self.printConfig(
            ["--config", config, "--max-ranges", "5", "--image", "cli=/images/cli.img@other"],
            environment: [
                "PAGESHARE_CACHE_SIZE=3GiB", "PAGESHARE_MAX_RANGES=7", "PAGESHARE_UNIX_SOCKETS=/a.sock,/b.sock",
            ])
        #expect(status == 0, "\(error)")
        #expect(text.contains("- 127.0.0.1:9000\n- '[::1]:9001'"), "listen from the file: \(text)")
        #expect(text.contains("cacheSize: 3221225472"), "the environment overrides the file")
        #expect(text.contains("maxRanges: 5"), "a flag overrides the environment")
        #expect(text.contains("unixSockets:\n- /a.sock\n- /b.sock"))
        #expect(text.contains("logFormat: json") && text.contains("pageSize: 4096"))
        #expect(text.contains("id: app") && text.contains("id: cli") && text.contains("domain: other"))
        // The printed configuration is itself a valid config file that gives the same result.
        try TestTree.write(directory.path + "/printed.yaml", Array(text.utf8))
        let (again, reprinted, _) = try Self.printConfig(["--config", directory.path + "/printed.yaml"])
        #expect(again == 0 && reprinted == text)
        let (_, viaEnvironment, _) = try Self.printConfig([], environment: ["PAGESHARE_CONFIG=\(config)"])
        #expect(viaEnvironment.contains("cacheSize: 2147483648"))
    }

    @Test("every configuration key has its flag, and every integer flag reaches the setting it names")
    func everyKeyHasItsFlag() throws {
        let help = String(decoding: try PageShareBinary.run(["serve", "--help"]).output, as: UTF8.self)
        let keys = help.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("  "), let open = line.firstIndex(of: "("), line.contains("(PAGESHARE_") else {
                return nil
            }
            return line[line.index(line.startIndex, offsetBy: 2)..<open].trimmingCharacters(in: .whitespaces)
        }
        #expect(keys.count >= 30, "\(keys)")
        let shortFlags = ["unixSockets": "--unix-socket", "imageDirectory": "--image-dir"]
        func flag(_ key: String) -> String {
            shortFlags[key] ?? "--" + key.replacing(/[A-Z]/) { "-" + $0.output.lowercased() }
        }
        for key in keys {
            #expect(help.contains(flag(key) + " ") || help.contains(flag(key) + "/"), "no flag for \(key)")
        }
        // Each integer setting, given on the command line as its default plus one, comes back from
        // --print-config: the flag reaches its key.
        let defaults = String(decoding: try PageShareBinary.run(["serve", "--print-config"]).output, as: UTF8.self)
        var arguments = ["serve", "--print-config"]
        var expected: [String] = []
        for line in defaults.split(separator: "\n") {
            let parts = line.split(separator: ": ", maxSplits: 1)
            guard parts.count == 2, let value = Int(parts[1]), keys.contains(String(parts[0])) else { continue }
            arguments += [flag(String(parts[0])), String(value + 1)]
            expected.append("\(parts[0]): \(value + 1)")
        }
        #expect(expected.count >= 14)
        let changed = try PageShareBinary.run(arguments)
        let text = String(decoding: changed.output, as: UTF8.self)
        for line in expected { #expect(text.contains(line + "\n"), "\(line): \(changed.error)") }
    }

    @Test("a bad configuration fails at start with the source, the key and the reason")
    func badConfiguration() throws {
        let directory = try TemporaryDirectory("config")
        defer { directory.remove() }
        let cases: [(String, [String], [String], String)] = [
            ("cacheSize: lots\n", [], [], "c.yaml: cacheSize: not a byte count"),
            ("bogus: 1\n", [], [], "c.yaml: unknown key bogus"),
            ("listen: {a: b}\n", [], [], "c.yaml: listen: expected a list of strings"),
            ("images:\n  - {id: x}\n", [], [], "c.yaml: images[0].path: missing"),
            ("images:\n  - {id: x, path: rel.img}\n", [], [], "images: x: path rel.img must be absolute"),
            ("[1, 2]\n", [], [], "c.yaml: the document must be a mapping"),
            ("", ["PAGESHARE_PAGE_SIZE=huge"], [], "PAGESHARE_PAGE_SIZE: not a byte count"),
            ("", [], ["--threads", "0"], "--threads: must be an integer ≥ 1"),
            ("", [], ["--tls-cert", "/c.pem"], "tlsCert and tlsKey go together"),
            ("", [], ["--socket-mode", "999"], "--socket-mode: not octal permission bits"),
        ]
        for (yaml, environment, flags, message) in cases {
            let config = directory.path + "/c.yaml"
            try TestTree.write(config, Array(yaml.utf8))
            let (status, _, error) = try Self.printConfig(["--config", config] + flags, environment: environment)
            #expect(status == 1, "\(yaml) \(environment) \(flags)")
            #expect(error.contains(message), "expected \(message) in: \(error)")
        }
        // An --image without a path is a usage error, not the working directory attached.
        let (status, _, error) = try Self.printConfig(["--image", "app="])
        #expect(status == 64 && error.contains("The value 'app=' is invalid for '--image"))
    }

    @Test("without a tokens file the daemon refuses a non-loopback listener unless allowed")
    func loopbackRule() throws {
        let refused = try PageShareBinary.run(["serve", "--listen", "0.0.0.0:0"])
        #expect(refused.status == 1 && refused.error.contains("refusing to listen on 0.0.0.0:0 without authentication"))
    }

    /// kill -9 while three clients attach and detach (each its own ids), four times: after each restart the
    /// images are exactly those the acknowledged operations leave; an operation cut off by the kill may or may
    /// not have happened (at most one per client).
    @Test("kill -9 during attach/detach loops loses no acknowledged change (needs curl)")
    func crashSafety() throws {
        let image = try TestImage(options: []) { try TestTree.write($0 + "/file", Array("content\n".utf8)) }
        defer { image.remove() }
        let state = image.directory.path + "/state"
        let clients = (0..<3).map { CrashClient(prefix: "c\($0)-") }
        var operations = 0
        var cutOff = 0
        for round in 0..<4 {
            let daemon = try Daemon(directory: image.directory.path, arguments: ["--state-dir", state])
            let listed = Self.listedImages(daemon)
            #expect(
                listed == clients.reduce(into: Set()) { $0.formUnion($1.expected) }, "round \(round): after restart")
            let group = DispatchGroup()
            for client in clients {
                DispatchQueue.global().async(group: group) { client.run(against: daemon, image: image.path) }
            }
            Thread.sleep(forTimeInterval: Double.random(in: 0.3...0.8))
            daemon.kill(SIGKILL)
            daemon.process.waitUntilExit()
            group.wait()
            let restarted = try Daemon(directory: image.directory.path, arguments: ["--state-dir", state])
            let after = Self.listedImages(restarted)
            for client in clients {
                let mine = after.filter { $0.hasPrefix(client.prefix) }
                #expect(
                    client.settle(with: mine),
                    "round \(round): \(mine) vs \(client.expected) ± \(String(describing: client.uncertain))")
                operations += client.operations
                cutOff += client.uncertain == nil ? 0 : 1
                client.reset()
            }
            restarted.stop()
        }
        #expect(operations >= 20, "operations ran before the kills: \(operations)")
        print("crash safety: \(operations) acknowledged operations, \(cutOff) cut off by kill -9")
    }

    @Test("pageshare admin: attach, list, get, quota, stats, detach over the unix socket and TCP; errors exit 1")
    func adminCommand() throws {
        let image = try TestImage(options: []) { try TestTree.write($0 + "/file", Array("content\n".utf8)) }
        defer { image.remove() }
        let tokens = image.directory.path + "/tokens.yaml"
        let hash = try PageShareBinary.hashToken("cli-token")
        try TestTree.write(tokens, Array("tokens: [{name: ops, sha256: \(hash), role: admin}]\n".utf8))
        let tokenFile = image.directory.path + "/token"
        try TestTree.write(tokenFile, Array("cli-token\n".utf8))
        let daemon = try Daemon(directory: image.directory.path, arguments: ["--tokens-file", tokens])
        defer { daemon.stop() }
        let connection = ["--unix-socket", daemon.socket, "--token-file", tokenFile]
        func admin(_ arguments: [String]) throws -> (Int32, String, String) {
            let result = try PageShareBinary.run(["admin"] + arguments)
            return (result.status, String(decoding: result.output, as: UTF8.self), result.error)
        }
        let (attached, attachOutput, attachError) = try admin(
            ["attach"] + connection + ["app", image.path, "--domain", "team", "--fingerprint", "digest"])
        #expect(attached == 0, "\(attachError)")
        #expect(attachOutput.contains(#""id" : "app""#) && attachOutput.contains(#""domain" : "team""#))
        let (_, list, _) = try admin(["list"] + connection)
        #expect(list.hasPrefix("ID\tSTATE\tDOMAIN") && list.contains("app\t") && list.contains(image.path))
        let (_, got, _) = try admin(["get"] + connection + ["app"])
        #expect(got.contains(#""mode" : "digest""#))
        let (quota, quotaOutput, _) = try admin(["quota"] + connection + ["team", "1MiB"])
        #expect(quota == 0 && quotaOutput.contains(#""quotaBytes" : 1048576"#))
        let (_, stats, _) = try admin(["stats"] + connection)
        #expect(stats.contains(#""attachedImages" : 1"#) && stats.contains(#""name" : "team""#))
        let (again, _, conflict) = try admin(["attach"] + connection + ["app", image.path])
        #expect(again == 1 && conflict.contains("409 Conflict: image app is already attached"))
        let (denied, _, unauthorized) = try admin(["list", "--unix-socket", daemon.socket])
        #expect(denied == 1 && unauthorized.contains("401 Unauthorized"))
        let (detached, detachOutput, _) = try admin(["detach"] + connection + ["app"])
        #expect(detached == 0 && detachOutput.contains("detached app"))
        let (missing, _, notFound) = try admin(["detach"] + connection + ["app"])
        #expect(missing == 1 && notFound.contains("404 Not Found"))
        let (unreachable, _, refused) = try admin(["list", "--server", "127.0.0.1:1"])
        #expect(unreachable == 1 && !refused.isEmpty)
    }

    @Test(
        "pageshare admin over TLS: https:// with --cacert (an IP address and a DNS name); untrusted or cleartext fails")
    func adminOverTLS() throws {
        let directory = try TemporaryDirectory("admin-tls")
        defer { directory.remove() }
        let (cert, key) = (directory.path + "/cert.pem", directory.path + "/key.pem")
        let made = try run(
            which("openssl")!,
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key,
                "-out", cert,
            ])
        try #require(made.status == 0, "openssl: \(made.error)")
        let port = try #require(freeLoopbackPort())
        let daemon = try Daemon(
            directory: directory.path,
            arguments: ["--listen", "127.0.0.1:\(port)", "--tls-cert", cert, "--tls-key", key])
        defer { daemon.stop() }
        func admin(_ arguments: [String]) throws -> (Int32, String, String) {
            let result = try PageShareBinary.run(["admin", "stats"] + arguments)
            return (result.status, String(decoding: result.output, as: UTF8.self), result.error)
        }
        for host in ["127.0.0.1", "localhost"] {
            let (status, output, error) = try admin(["--server", "https://\(host):\(port)", "--cacert", cert])
            #expect(status == 0 && output.contains("attachedImages"), "\(host): \(error)")
        }
        let (untrusted, _, untrustedError) = try admin(["--server", "https://127.0.0.1:\(port)"])
        #expect(untrusted == 1 && untrustedError.lowercased().contains("certificate"), "\(untrustedError)")
        let (cleartext, _, cleartextError) = try admin(["--server", "127.0.0.1:\(port)"])
        #expect(cleartext == 1 && !cleartextError.isEmpty)
        let (misused, _, misuseError) = try admin(["--server", "127.0.0.1:\(port)", "--cacert", cert])
        #expect(misused != 0 && misuseError.contains("--cacert goes with an https:// server"), "\(misuseError)")
    }

    @Test(
        "systemd socket activation: the daemon serves on the socket it is handed, not on the default port",
        .enabled(if: which("systemd-socket-activate") != nil, "needs systemd-socket-activate"))
    func socketActivation() throws {
        let image = try TestImage(options: []) { try TestTree.write($0 + "/file", Array("activated\n".utf8)) }
        defer { image.remove() }
        let port = try #require(freeLoopbackPort())
        let log = image.directory.path + "/activated.log"
        // One shell runs the activator and the client: Foundation's Process mishandles a long-lived child
        // that exec()s (its SIGCHLD handling blocks in waitpid on it).
        let script = """
            systemd-socket-activate -l 127.0.0.1:\(port) '\(PageShareBinary.path)' serve --cache-size 64MiB \\
                --image 'a=\(image.path)' >'\(log)' 2>&1 &
            activator=$!
            body=""
            for _ in $(seq 100); do
                body=$(curl -s -m 5 http://127.0.0.1:\(port)/v1/images/a/files/file) && [ -n "$body" ] && break
                sleep 0.05
            done
            kill -TERM $activator
            # Not `wait`: the shell inherits the test process's blocked signals, and dash's wait sleeps until a
            # SIGCHLD that never comes. The daemon logs "stopped" as it exits.
            for _ in $(seq 100); do grep -q 'msg=stopped' '\(log)' && break; sleep 0.05; done
            printf '%s' "$body"
            """
        let result = try run("/bin/sh", ["-c", script])
        #expect(String(decoding: result.output, as: UTF8.self) == "activated", "\(result.error)")
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text.contains("listeners=fd:3") && text.contains("127.0.0.1:\(port)"), "\(text)")
        #expect(!text.contains("8480"), "the default listener is not added: \(text)")
        #expect(text.contains("stopped"), "SIGTERM still stops it gracefully: \(text)")
    }

    static func listedImages(_ daemon: Daemon) -> Set<String> {
        let body = daemon.request("GET", "/v1/admin/images").body
        let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        return Set((object?["images"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? [])
    }

    @Test(
        "a configured image not there yet: the daemon starts, lists it failed and counts it, attaches it once it is there; required: true refuses to start"
    )
    func missingConfiguredImage() throws {
        let image = try TestImage(options: []) { try TestTree.write($0 + "/file", Array("arrived\n".utf8)) }
        defer { image.remove() }
        let directory = image.directory.path
        let later = directory + "/later.img"
        let config = directory + "/pageshare.yaml"
        try TestTree.write(
            config, Array("images:\n  - {id: later, path: \(later)}\n  - {id: now, path: \(image.path)}\n".utf8))
        let daemon = try Daemon(directory: directory, arguments: ["--config", config])
        defer { daemon.stop() }
        #expect(
            daemon.request("GET", "/v1/images/now/files/file").body.hasPrefix("arrived\n"), "the other one is served")
        let failed = daemon.request("GET", "/v1/admin/images/later").body
        #expect(failed.contains("\"state\":\"failed\"") && failed.contains("No such file"), "\(failed)")
        #expect(daemon.request("GET", "/metrics").body.contains("pageshare_images_failed 1"))
        try FileManager.default.copyItem(atPath: image.path, toPath: later)
        daemon.kill(SIGHUP)
        var body = ""
        for _ in 0..<250 where !body.hasPrefix("arrived\n") {
            Thread.sleep(forTimeInterval: 0.02)
            body = daemon.request("GET", "/v1/images/later/files/file").body
        }
        #expect(body.hasPrefix("arrived\n"), "attached once the file is there")
        #expect(daemon.request("GET", "/metrics").body.contains("pageshare_images_failed 0"))
        let log = try String(contentsOfFile: daemon.log, encoding: .utf8)
        #expect(log.contains("configured image not attached") && log.contains("image=later"), "\(log)")

        try FileManager.default.removeItem(atPath: later)
        try TestTree.write(config, Array("images:\n  - {id: later, path: \(later), required: true}\n".utf8))
        let refused = try run(PageShareBinary.path, ["serve", "--config", config, "--listen", "127.0.0.1:0"])
        #expect(refused.status != 0 && refused.error.contains("later.img"), "\(refused.error)")
    }

    @Test(
        "the container image's default configuration starts and answers its health check (paths moved under a temporary root)"
    )
    func containerDefaultConfiguration() throws {
        let directory = try TemporaryDirectory("container")
        defer { directory.remove() }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let port = try #require(freeLoopbackPort())
        var text = try String(contentsOfFile: root + "/deploy/config/container.yaml", encoding: .utf8)
        text = text.replacingOccurrences(of: "/run/pageshare", with: directory.path + "/run")
            .replacingOccurrences(of: "/var/lib/pageshare", with: directory.path + "/state")
            .replacingOccurrences(of: "127.0.0.1:8480", with: "127.0.0.1:\(port)")
        try TestTree.make(directory.path + "/run")
        let config = directory.path + "/pageshare.yaml"
        try TestTree.write(config, Array(text.utf8))
        let log = directory.path + "/daemon.log"
        let script = """
            '\(PageShareBinary.path)' serve --config '\(config)' >'\(log)' 2>&1 &
            daemon=$!
            status=000
            for _ in $(seq 100); do
                status=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:\(port)/healthz) && [ "$status" = 200 ] && break
                sleep 0.05
            done
            kill -TERM $daemon
            for _ in $(seq 100); do grep -q 'msg=stopped' '\(log)' && break; sleep 0.05; done
            printf '%s' "$status"
            """
        let result = try run("/bin/sh", ["-c", script])
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(String(decoding: result.output, as: UTF8.self) == "200", "\(output)")
        #expect(output.contains("unix:\(directory.path)/run/pageshare.sock"), "the socket listener too: \(output)")
    }

    @Test("SIGHUP reloads the tokens file and the log level, names what needs a restart; broken files change nothing")
    func sighupReload() throws {
        let directory = try TemporaryDirectory("tokens")
        defer { directory.remove() }
        let tokens = directory.path + "/tokens.yaml"
        func writeTokens(_ token: String) throws {
            let hash = try PageShareBinary.hashToken(token)
            try TestTree.write(tokens, Array("tokens: [{name: ops, sha256: \(hash), role: admin}]\n".utf8))
        }
        try writeTokens("first-token")
        let config = directory.path + "/pageshare.yaml"
        try TestTree.write(config, Array("logLevel: info\nmaxRanges: 8\n".utf8))
        let daemon = try Daemon(directory: directory.path, arguments: ["--tokens-file", tokens, "--config", config])
        defer { daemon.stop() }
        #expect(daemon.request("GET", "/v1/admin/cache", token: "first-token").status == 200)
        #expect(daemon.request("GET", "/v1/admin/cache").status == 401, "the unix socket needs a token too")
        try writeTokens("second-token")
        // The same signal applies a new log level and names what needs a restart.
        try TestTree.write(config, Array("logLevel: debug\nmaxRanges: 9\n".utf8))
        daemon.kill(SIGHUP)
        var status = 0
        for _ in 0..<250 where status != 200 {
            Thread.sleep(forTimeInterval: 0.02)
            status = daemon.request("GET", "/v1/admin/cache", token: "second-token").status
        }
        #expect(status == 200)
        #expect(daemon.request("GET", "/v1/admin/cache", token: "first-token").status == 401)
        try TestTree.write(tokens, Array("tokens: nonsense\n".utf8))
        daemon.kill(SIGHUP)
        Thread.sleep(forTimeInterval: 0.3)
        #expect(daemon.request("GET", "/v1/admin/cache", token: "second-token").status == 200)
        let log = try String(contentsOfFile: daemon.log, encoding: .utf8)
        #expect(log.contains("tokens reloaded") && log.contains("tokens not reloaded"))
        #expect(log.contains("msg=\"log level changed\" level=debug"), "\(log)")
        #expect(log.contains("level=debug logger=pageshare msg=request"), "debug lines appear after the reload")
        #expect(log.contains("restart to apply it"), "maxRanges cannot change in place")
        #expect(!log.contains("second-token") && !log.contains("first-token"), "no secret in the log")
        #expect(log.contains("msg=\"admin request\"") && log.contains("caller=ops"), "admin requests name the caller")
    }
}

/// One client of the crash test: attaches new ids of its own or detaches one of them, recording what the
/// daemon acknowledged. `@unchecked Sendable`: used by one thread at a time (the test waits for it).
final class CrashClient: @unchecked Sendable {
    let prefix: String
    private(set) var expected: Set<String> = []
    /// The operation without an answer (the kill came first): attach or detach of an id.
    private(set) var uncertain: (attach: Bool, id: String)?
    private(set) var operations = 0
    private var counter = 0

    init(prefix: String) { self.prefix = prefix }

    func run(against daemon: Daemon, image: String) {
        while daemon.process.isRunning {
            let detach = !self.expected.isEmpty && Bool.random()
            let id = detach ? self.expected.randomElement()! : "\(self.prefix)\(self.counter)"
            self.counter += 1
            let response =
                detach
                ? daemon.request("DELETE", "/v1/admin/images/\(id)")
                : daemon.request("POST", "/v1/admin/images", json: #"{"id":"\#(id)","path":"\#(image)"}"#)
            switch response.status {
            case 201: self.expected.insert(id)
            case 204: self.expected.remove(id)
            default:
                self.uncertain = (!detach, id)
                return
            }
            self.operations += 1
        }
    }

    /// Whether `listed` is what the acknowledged operations leave, or that plus the cut-off one; adopts it.
    func settle(with listed: Set<String>) -> Bool {
        var alternative = self.expected
        if let uncertain = self.uncertain {
            if uncertain.attach { alternative.insert(uncertain.id) } else { alternative.remove(uncertain.id) }
        }
        guard listed == self.expected || listed == alternative else { return false }
        self.expected = listed
        return true
    }

    func reset() {
        self.uncertain = nil
        self.operations = 0
    }
}
