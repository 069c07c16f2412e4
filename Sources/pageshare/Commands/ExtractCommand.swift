import ArgumentParser
import EROFS

/// `pageshare extract IMAGE DIR`: the whole tree, the same job as `fsck.erofs --extract`.
struct ExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Extract the whole tree: data, modes, mtimes, symlinks, hard links; owners, devices, xattrs as root.")

    @OptionGroup var options: ImageOptions
    @Argument(help: "Destination directory (created if missing; existing entries are not overwritten).")
    var destination: String

    func run() throws {
        let image = try self.options.open()
        let extractor = try Extractor(image: image, destination: self.destination)
        try extractor.run()
        if extractor.skippedDevices > 0 {
            printError("pageshare: skipped \(extractor.skippedDevices) device node(s): not running as root")
        }
    }
}
