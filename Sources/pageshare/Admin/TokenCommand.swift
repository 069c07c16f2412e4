import ArgumentParser
import Foundation
import PageShareServer

/// `pageshare token new|hash`: make bearer tokens and the hashes the tokens file stores.
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Make a bearer token, or hash one, for the tokens file.",
        subcommands: [New.self, Hash.self])

    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a new random 256-bit token (give it to the client) and its sha256 (for the tokens file).")

        func run() throws {
            var generator = SystemRandomNumberGenerator()
            let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let token = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            print("token:  \(token)")
            print("sha256: \(AccessTokens.hash(token))")
        }
    }

    struct Hash: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the sha256 of the token read from stdin.")

        func run() throws {
            let input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            print(AccessTokens.hash(input.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
    }
}
