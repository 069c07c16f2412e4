import EROFSTestSupport
import Foundation
import Glibc
import Testing

/// The daemon as it is deployed: an unprivileged user (uid and gid 65534, no supplementary groups), over
/// every listener kind, reading a file's bytes. (Run only as root, which can drop to that user; as root
/// alone, setting SO_DEBUG instead of TCP_NODELAY had succeeded and hidden that every TCP connection of a
/// non-root daemon was reset.)
@Suite(
    "The daemon as an unprivileged user",
    .enabled(if: geteuid() == 0 && which("setpriv") != nil, "needs root (to drop to uid 65534) and setpriv"))
struct UnprivilegedDaemonTests {
    /// (No trailing newline: the shell's `$(…)` drops it.)
    static let content = "served to nobody"

    /// A world-readable image, a directory uid 65534 may create its socket in, and a copy of the binary
    /// where that user can run it.
    struct Setup {
        let directory: TemporaryDirectory
        let image: String
        let binary: String
        let run: String

        init() throws {
            self.directory = try TemporaryDirectory("unprivileged")
            chmod(self.directory.path, 0o755)
            let image = try TestImage(options: []) {
                try TestTree.write($0 + "/file", Array(UnprivilegedDaemonTests.content.utf8))
            }
            defer { image.remove() }
            self.image = self.directory.path + "/image.img"
            try TestTree.write(self.image, try image.bytes())
            chmod(self.image, 0o644)
            self.run = self.directory.path + "/run"
            try TestTree.make(self.run)
            chown(self.run, 65534, 65534)
            let probe = try EROFSTestSupport.run(
                which("setpriv")!, Self.dropping + ["/bin/test", "-x", PageShareBinary.path])
            if probe.status == 0 {
                self.binary = PageShareBinary.path
            } else {
                self.binary = self.directory.path + "/pageshare"
                try FileManager.default.copyItem(atPath: PageShareBinary.path, toPath: self.binary)
                chmod(self.binary, 0o755)
            }
        }

        static let dropping = ["--reuid", "65534", "--regid", "65534", "--clear-groups", "--"]

        /// Runs `prefix` + `setpriv … pageshare serve` + `arguments` in the background, waits until `curl`
        /// with `client` gets the file, stops the daemon; returns the body and the daemon's log.
        func serve(prefix: String = "", _ arguments: String, client: String) throws -> (body: String, log: String) {
            let log = self.directory.path + "/daemon-\(UUID().uuidString).log"
            let script = """
                \(prefix) setpriv \(Self.dropping.joined(separator: " ")) '\(self.binary)' serve --cache-size 64MiB \\
                    --image 'img=\(self.image)' \(arguments) >'\(log)' 2>&1 &
                daemon=$!
                body=""
                for _ in $(seq 150); do
                    body=$(curl -s -m 5 \(client)) && [ -n "$body" ] && break
                    sleep 0.05
                done
                kill -TERM $daemon
                for _ in $(seq 100); do grep -q 'msg=stopped' '\(log)' && break; sleep 0.05; done
                printf '%s' "$body"
                """
            let result = try EROFSTestSupport.run("/bin/sh", ["-c", script])
            return (
                String(decoding: result.output, as: UTF8.self),
                (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            )
        }
    }

    @Test("TCP")
    func tcp() throws {
        let setup = try Setup()
        defer { setup.directory.remove() }
        let port = try #require(freeLoopbackPort())
        let (body, log) = try setup.serve(
            "--listen 127.0.0.1:\(port)", client: "http://127.0.0.1:\(port)/v1/images/img/files/file")
        #expect(body == Self.content, "\(log)")
    }

    @Test("TLS with ALPN h2")
    func tls() throws {
        let setup = try Setup()
        defer { setup.directory.remove() }
        let (cert, key) = (setup.directory.path + "/cert.pem", setup.directory.path + "/key.pem")
        let made = try EROFSTestSupport.run(
            which("openssl")!,
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert,
            ])
        try #require(made.status == 0, "openssl: \(made.error)")
        chmod(key, 0o644)
        let port = try #require(freeLoopbackPort())
        let (body, log) = try setup.serve(
            "--listen 127.0.0.1:\(port) --tls-cert '\(cert)' --tls-key '\(key)'",
            client: "--http2 --cacert '\(cert)' https://127.0.0.1:\(port)/v1/images/img/files/file")
        #expect(body == Self.content, "\(log)")
    }

    @Test("unix socket")
    func unixSocket() throws {
        let setup = try Setup()
        defer { setup.directory.remove() }
        let socket = setup.run + "/pageshare.sock"
        let (body, log) = try setup.serve(
            "--unix-socket '\(socket)'", client: "--unix-socket '\(socket)' http://localhost/v1/images/img/files/file")
        #expect(body == Self.content, "\(log)")
    }

    @Test(
        "systemd socket activation",
        .enabled(if: which("systemd-socket-activate") != nil, "needs systemd-socket-activate")
    )
    func socketActivation() throws {
        let setup = try Setup()
        defer { setup.directory.remove() }
        let port = try #require(freeLoopbackPort())
        let (body, log) = try setup.serve(
            prefix: "systemd-socket-activate -l 127.0.0.1:\(port)", "",
            client: "http://127.0.0.1:\(port)/v1/images/img/files/file")
        #expect(body == Self.content, "\(log)")
        #expect(log.contains("listeners=fd:3"), "\(log)")
    }

    /// Start-up failures name what failed and why; as uid 65534 the places root made refuse it.
    @Test("start-up failures name their cause: a port in use, a socket or state directory the user cannot write")
    func startupFailuresNameTheirCause() throws {
        let setup = try Setup()
        defer { setup.directory.remove() }
        let closed = setup.directory.path + "/root-only"
        try TestTree.make(closed)
        chmod(closed, 0o755)
        func serve(_ arguments: [String]) throws -> (Int32, String) {
            let result = try EROFSTestSupport.run(
                which("setpriv")!,
                Setup.dropping + [setup.binary, "serve", "--cache-size", "64MiB", "--image", "img=\(setup.image)"]
                    + arguments)
            return (result.status, result.error)
        }
        let (socketStatus, socketError) = try serve(["--unix-socket", closed + "/pageshare.sock"])
        #expect(socketStatus == 1)
        #expect(
            socketError.contains(
                "cannot bind unix socket \(closed)/pageshare.sock: permission denied (directory \(closed): owner uid 0, mode 0755; running as uid 65534)"
            ),
            "\(socketError)")
        let (stateStatus, stateError) = try serve([
            "--unix-socket", setup.run + "/s.sock", "--state-dir", closed + "/state",
        ])
        #expect(stateStatus == 1)
        #expect(
            stateError.contains("cannot create state directory \(closed)/state: permission denied"), "\(stateError)")
        try TestTree.make(closed + "/existing")
        chmod(closed + "/existing", 0o755)
        let (existingStatus, existingError) = try serve([
            "--unix-socket", setup.run + "/s.sock", "--state-dir", closed + "/existing",
        ])
        #expect(
            existingStatus == 1 && existingError.contains("state directory \(closed)/existing is not writable"),
            "\(existingError)")
        // A port already taken (by a socket of this test).
        let port = try #require(freeLoopbackPort())
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        try #require(bound == 0 && listen(holder, 1) == 0)
        let (portStatus, portError) = try serve(["--listen", "127.0.0.1:\(port)"])
        #expect(
            portStatus == 1 && portError.contains("cannot listen on 127.0.0.1:\(port): address already in use"),
            "\(portError)")
    }

    @Test(
        "the DaemonSet as shipped: its init container's command, then the daemon with the pod's uid, no capabilities and a read-only root",
        .enabled(if: which("unshare") != nil && which("nsenter") != nil, "needs unshare and nsenter"),
        .enabled(
            if: (try? EROFSTestSupport.run("/usr/bin/python3", ["-c", "import yaml"]))?.status == 0,
            "needs /usr/bin/python3 with PyYAML"))
    func kubernetesRehearsal() throws {
        let directory = try TemporaryDirectory("kubernetes")
        defer { directory.remove() }
        let image = try TestImage(options: []) { try TestTree.write($0 + "/file", Array("served in the pod".utf8)) }
        defer { image.remove() }
        let port = try #require(freeLoopbackPort())
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Scripts/kubernetes-rehearsal.sh").path
        let result = try EROFSTestSupport.run(
            "/bin/sh", [script, PageShareBinary.path, image.path, directory.path, String(port)])
        let text = String(decoding: result.output, as: UTF8.self)
        var lines: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, lines[String(parts[0])] == nil {
                lines[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces)
            }
        }
        #expect(result.status == 0, "\(result.error)")
        #expect(lines["init"] == "10001:10001 755 10001:10001 700", "the hostPath directories given to the pod's uid")
        #expect(lines["unix"] == "served in the pod", "\(text)")
        #expect(lines["tcp"] == "served in the pod", "\(text)")
        #expect(lines["attach"] == "201" && lines["state"] == "10001:10001", "state written by the pod's uid: \(text)")
        #expect(lines["root"]?.contains("Read-only file system") == true, "\(text)")
    }
}
