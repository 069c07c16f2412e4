import ArgumentParser
import EROFS

/// The image argument and extra-device options every command shares.
struct ImageOptions: ParsableArguments {
    @Argument(help: "Path of the EROFS image.")
    var image: String

    @Option(
        name: .customLong("device"),
        help: "Extra device (blob) for chunk-based files, in device-table order; repeat for each.")
    var devices: [String] = []

    func open() throws -> Image {
        try Image(path: self.image, devicePaths: self.devices)
    }
}
