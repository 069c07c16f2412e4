import EROFS

/// One fuzz input: open it as an EROFS image held in memory and read everything reachable (the shape of
/// erofs-utils fuzzing `fsck.erofs --extract`). Any `EROFSError` is an acceptable outcome; a trap, an
/// address-sanitizer report, a leak or a timeout is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func erofsFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    do {
        let image = try Image(source: MemoryImageSource(bytes))
        _ = try image.check(maximumBytesPerFile: 1 << 20)
        for path in ["/a", "/d/e/up/../a", "link", "/nonexistent/x"] {
            _ = try? image.resolve(path)
        }
    } catch {
        // Rejected input: the expected outcome for most mutations.
    }
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
private func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// SwiftPM links an executable's entry point as `<module>_main`; hand control to libFuzzer's driver
/// (the library's own `main` is then not linked).
@_cdecl("EROFSFuzzer_main")
public func fuzzerMain(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments) { data, size in erofsFuzzerTestOneInput(data, size) }
}
