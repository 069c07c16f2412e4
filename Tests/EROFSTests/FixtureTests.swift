import EROFS
import EROFSTestSupport
import Testing

/// Every image of `../shared/fixtures` (mkfs.erofs 1.9.3) read exactly as the Linux kernel's mount read it.
@Suite("Fixtures from mkfs.erofs 1.9.3", .enabled(if: Fixtures.isAvailable, "needs ../shared/fixtures"))
struct FixtureTests {
    @Test("the reader matches the kernel-read manifest", arguments: Fixtures.names)
    func readerMatchesManifest(name: String) throws {
        let manifest = try Fixtures.manifest(name)
        let image = try Image(path: manifest.imagePath, devicePaths: manifest.devicePaths)
        let problems = compareManifests(try manifestOfImage(image), manifest.files)
        #expect(
            problems.isEmpty, "\(name): \(problems.count) differences\n\(problems.prefix(20).joined(separator: "\n"))")
    }

    @Test(
        "the reader matches the kernel mount", .enabled(if: KernelMount.isAvailable, "needs root and mount -t erofs"),
        arguments: Fixtures.names)
    func readerMatchesKernel(name: String) throws {
        let manifest = try Fixtures.manifest(name)
        let image = try Image(path: manifest.imagePath, devicePaths: manifest.devicePaths)
        let kernel = try KernelMount.withMount(manifest.imagePath, devices: manifest.devicePaths) {
            try manifestOfHostTree($0)
        }
        let problems = compareManifests(try manifestOfImage(image), kernel)
        #expect(
            problems.isEmpty, "\(name): \(problems.count) differences\n\(problems.prefix(20).joined(separator: "\n"))")
    }
}
