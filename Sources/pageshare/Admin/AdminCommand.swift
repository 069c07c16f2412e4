import ArgumentParser
import Foundation
import NIOHTTP1
import NIOSSL
import PageShareServer

/// `pageshare admin …`: the admin API from the command line (attach, detach, list, get, stats, quota).
struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Attach, detach and list images, set quotas and read statistics of a running daemon.",
        subcommands: [
            AdminAttachCommand.self, AdminDetachCommand.self, AdminListCommand.self, AdminGetCommand.self,
            AdminStatsCommand.self, AdminQuotaCommand.self,
        ])
}

/// Where the daemon is and who is asking.
struct AdminConnectionOptions: ParsableArguments {
    @Option(help: "The daemon's address: HOST:PORT, http://HOST:PORT, or https://HOST:PORT for TLS.")
    var server: String = "127.0.0.1:8480"
    @Option(help: "Talk to the daemon over this unix socket instead.") var unixSocket: String?
    @Option(help: "File holding the admin bearer token (default: $PAGESHARE_TOKEN).") var tokenFile: String?
    @Option(help: "PEM certificates to trust for https:// (default: the system's trust store).") var cacert: String?

    var client: AdminClient {
        get throws {
            var token = ProcessInfo.processInfo.environment["PAGESHARE_TOKEN"]
            if let file = self.tokenFile {
                token = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(
                    in: .whitespacesAndNewlines)
            }
            if let path = self.unixSocket { return AdminClient(endpoint: .unix(path: path), token: token) }
            var server = Substring(self.server)
            let secure = server.lowercased().hasPrefix("https://")
            if secure {
                server = server.dropFirst(8)
            } else if server.lowercased().hasPrefix("http://") {
                server = server.dropFirst(7)
            }
            if server.hasSuffix("/") { server = server.dropLast() }
            guard let address = TCPAddress(argument: String(server)) else {
                throw ValidationError("--server must be HOST:PORT, http://HOST:PORT or https://HOST:PORT")
            }
            guard secure || self.cacert == nil else { throw ValidationError("--cacert goes with an https:// server") }
            var context: NIOSSLContext?
            if secure {
                var configuration = TLSConfiguration.makeClientConfiguration()
                configuration.applicationProtocols = ["http/1.1"]
                if let cacert = self.cacert {
                    guard FileManager.default.isReadableFile(atPath: cacert) else {
                        throw ValidationError("--cacert \(cacert): not a readable file")
                    }
                    configuration.trustRoots = .file(cacert)
                }
                context = try NIOSSLContext(configuration: configuration)
            }
            return AdminClient(endpoint: .tcp(host: address.host, port: address.port, tls: context), token: token)
        }
    }

    /// Sends the request; prints the problem's detail and fails on an error status.
    func call(_ method: HTTPMethod, _ path: String, json: [UInt8]? = nil) async throws -> [UInt8] {
        let response = try await self.client.send(method, path, json: json)
        guard response.status.code < 300 else {
            let problem = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
            throw AdminFailure(
                description: "\(response.status.code) \(response.status.reasonPhrase): "
                    + "\(problem?["detail"] as? String ?? String(decoding: response.body, as: UTF8.self))")
        }
        return response.body
    }
}

/// An error answer of the daemon: printed as one line, exit status 1.
struct AdminFailure: Error, CustomStringConvertible {
    var description: String
}

/// Prints a JSON body indented.
func printJSON(_ body: [UInt8]) {
    guard let object = try? JSONSerialization.jsonObject(with: Data(body)),
        let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    else { return print(String(decoding: body, as: UTF8.self)) }
    print(String(decoding: pretty, as: UTF8.self))
}

struct AdminAttachCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "attach", abstract: "Attach an image.")
    @OptionGroup var connection: AdminConnectionOptions
    @Argument(help: "Image id.") var id: String
    @Argument(help: "Path of the image on the daemon's host (made absolute here).") var path: String
    @Option(help: "Fingerprint domain.") var domain = "default"
    @Option(help: "auto, xattr, digest or none.") var fingerprint = ImageRecord.Fingerprint.auto.rawValue
    @Flag(help: "Verify shared files against their fingerprints.") var verify = false
    @Flag(help: "Read the whole image first, as pageshare check does, and refuse it on a problem.") var check = false
    @Option(name: .customLong("device"), help: "Extra device, in device-table order (repeatable).")
    var devices: [String] = []

    func run() async throws {
        guard let fingerprint = ImageRecord.Fingerprint(rawValue: self.fingerprint) else {
            throw ValidationError("--fingerprint must be auto, xattr, digest or none")
        }
        let record = ImageRecord(
            id: self.id, path: absolutePath(self.path), domain: self.domain, fingerprint: fingerprint,
            verify: self.verify, devices: self.devices.map(absolutePath), check: self.check)
        printJSON(try await self.connection.call(.POST, "/v1/admin/images", json: Array(JSONEncoder().encode(record))))
    }
}

struct AdminDetachCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "detach", abstract: "Detach an image.")
    @OptionGroup var connection: AdminConnectionOptions
    @Argument(help: "Image id.") var id: String

    func run() async throws {
        _ = try await self.connection.call(.DELETE, AdminPath.image(self.id))
        print("detached \(self.id)")
    }
}

struct AdminListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the attached images.")
    @OptionGroup var connection: AdminConnectionOptions
    @Flag(help: "Print the JSON answer.") var json = false

    func run() async throws {
        let body = try await self.connection.call(.GET, "/v1/admin/images")
        if self.json { return printJSON(body) }
        let list = try JSONDecoder().decode(AdminBodies.ImageList.self, from: Data(body))
        print("ID\tSTATE\tDOMAIN\tMODE\tRESIDENT\tPATH")
        for image in list.images {
            let state =
                image.state == .attaching ? "attaching \(Int(image.progress?.percent ?? 0))%" : image.state.rawValue
            print(
                "\(image.id)\t\(state)\t\(image.domain)\t\(image.mode ?? "-")\t"
                    + "\(image.statistics?.residentBytes ?? 0)\t\(image.path)")
        }
    }
}

struct AdminGetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Show one image.")
    @OptionGroup var connection: AdminConnectionOptions
    @Argument(help: "Image id.") var id: String

    func run() async throws {
        printJSON(try await self.connection.call(.GET, AdminPath.image(self.id)))
    }
}

struct AdminStatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Show the cache's totals and every domain's accounting.")
    @OptionGroup var connection: AdminConnectionOptions

    func run() async throws {
        printJSON(try await self.connection.call(.GET, "/v1/admin/cache"))
        printJSON(try await self.connection.call(.GET, "/v1/admin/domains"))
    }
}

struct AdminQuotaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quota", abstract: "Set a domain's quota of resident bytes (none: remove it).")
    @OptionGroup var connection: AdminConnectionOptions
    @Argument(help: "Domain.") var domain: String
    @Argument(help: "Bytes, e.g. 512MiB, or none.") var bytes: String

    func run() async throws {
        let path = AdminPath.domain(self.domain) + "/quota"
        if self.bytes == "none" { return printJSON(try await self.connection.call(.DELETE, path)) }
        guard let count = ByteCount(argument: self.bytes) else {
            throw ValidationError("not a byte count: \(self.bytes)")
        }
        let body = try JSONEncoder().encode(AdminBodies.QuotaRequest(bytes: count.bytes))
        printJSON(try await self.connection.call(.PUT, path, json: Array(body)))
    }
}
