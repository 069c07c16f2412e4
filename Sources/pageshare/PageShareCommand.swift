import ArgumentParser

/// `pageshare`: the daemon (`serve`) and tools to inspect and extract EROFS images.
@main
struct PageShareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pageshare",
        abstract: "Serve files of EROFS images from one shared page cache; inspect, list, stat, cat and extract them.",
        subcommands: [
            InspectCommand.self, CheckCommand.self, LsCommand.self, StatCommand.self, CatCommand.self,
            ExtractCommand.self,
            ShareReportCommand.self, ServeCommand.self, AdminCommand.self, TokenCommand.self,
        ]
    )
}
