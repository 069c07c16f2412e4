import ArgumentParser

@main
struct PageShareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pageshare", abstract: "PageShare")
}
