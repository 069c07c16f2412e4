import ArgumentParser

/// `pageshare`: the daemon (`serve`) and tools to inspect and extract EROFS images.
@main
struct PageShareCommand: AsyncParsableCommand {
    /// The release this source tree is (the commit says which build of it).
    static let version = "0.20.0"

    static let configuration = CommandConfiguration(
        commandName: "pageshare",
        abstract: "Serve files of EROFS images from one shared page cache; inspect, list, stat, cat and extract them.",
        version: "pageshare \(Self.version) (commit \(BuildInfo.commit))",
        subcommands: [
            InspectCommand.self, CheckCommand.self, LsCommand.self, StatCommand.self, CatCommand.self,
            ExtractCommand.self,
            ShareReportCommand.self, ServeCommand.self, AdminCommand.self, TokenCommand.self,
        ]
    )
}
