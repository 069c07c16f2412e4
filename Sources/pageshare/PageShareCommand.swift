import ArgumentParser

/// `pageshare`: inspect and extract EROFS images (the daemon's `serve` arrives with the server issue).
@main
struct PageShareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pageshare",
        abstract: "Read EROFS images: inspect, list, stat, cat and extract files.",
        subcommands: [
            InspectCommand.self, LsCommand.self, StatCommand.self, CatCommand.self, ExtractCommand.self,
            ShareReportCommand.self,
        ]
    )
}
