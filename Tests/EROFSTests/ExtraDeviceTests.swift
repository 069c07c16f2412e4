import EROFS
import EROFSTestSupport
import Testing

/// Chunk-based files whose data lives in an extra device (`mkfs.erofs --blobdev`).
@Suite("Extra devices")
struct ExtraDeviceTests {
    static func makeImage() throws -> (TestImage, String) {
        let image = try TestImage.full(options: ["--chunksize=4096"], withBlobDevice: true)
        return (image, image.blobDevice!)
    }

    @Test func readsDataFromTheGivenDevice() throws {
        let (image, blob) = try Self.makeImage()
        defer { image.remove() }
        #expect(try image.open(devicePaths: [blob]).superBlock.extraDeviceCount == 1)
        let problems = try image.readerVersusFsck(devices: [blob])
        #expect(problems.isEmpty, "\(problems.prefix(10))")
    }

    @Test("matches the kernel with -o device=", .enabled(if: KernelMount.isAvailable, "needs root and mount -t erofs"))
    func matchesTheKernel() throws {
        let (image, blob) = try Self.makeImage()
        defer { image.remove() }
        let problems = try image.readerVersusKernel(devices: [blob])
        #expect(problems.isEmpty, "\(problems.prefix(10))")
    }

    @Test func missingDeviceFailsOnlyTheFilesThatNeedIt() throws {
        let (image, _) = try Self.makeImage()
        defer { image.remove() }
        let erofs = try image.open()
        let large = try erofs.resolve("large.bin")
        let error = try #require(throws: EROFSError.self) { try erofs.readBytes(large, count: 10) }
        #expect(error.code == .missingDevice)
        #expect(error.message.contains("extra device 1"))
        // Metadata and inline data need no extra device.
        #expect(try erofs.entries(of: try erofs.resolve("many")).count >= 3000)
    }

    @Test func tooManyDevicesIsRefusedAtOpen() throws {
        let (image, blob) = try Self.makeImage()
        defer { image.remove() }
        #expect(throws: EROFSError(.invalidArgument, "")) { try image.open(devicePaths: [blob, blob]) }
        #expect(throws: EROFSError(.ioFailure, "")) { try image.open(devicePaths: [image.directory.path + "/nope"]) }
    }
}
