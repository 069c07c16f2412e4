import ArgumentParser
import EROFS
import SystemPackage

/// `pageshare cat IMAGE PATH [--offset N --length N]`: a file's bytes on stdout.
struct CatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cat", abstract: "Write a file's bytes to stdout.")

    @OptionGroup var options: ImageOptions
    @Argument(help: "Path inside the image.") var path: String
    @Option(help: "First byte to write.") var offset: UInt64 = 0
    @Option(help: "Most bytes to write (default: to the end).") var length: UInt64?

    func run() throws {
        let image = try self.options.open()
        let inode = try image.resolve(self.path)
        guard inode.fileType == .regular else {
            throw EROFSError(.isADirectory, "\(self.path): not a regular file (\(inode.fileType.rawValue))")
        }
        let end =
            self.length.map { min(inode.size, self.offset.addingReportingOverflow($0).partialValue) }
            ?? inode.size
        try copyFileData(
            image: image, inode: inode, range: self.offset..<max(end, self.offset), to: FileDescriptor.standardOutput)
    }
}

/// Copies `range` of `inode`'s data to `descriptor` through one reusable 1 MiB buffer.
func copyFileData(image: Image, inode: Inode, range: Range<UInt64>, to descriptor: FileDescriptor) throws {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
    defer { buffer.deallocate() }
    try image.readSequentially(inode, range: range, using: buffer, context: ReadContext()) { chunk in
        _ = try descriptor.writeAll(chunk)
    }
}
