// swift-tools-version:6.1
// Benchmarks live in their own package (as in swift-nio) so the main package never resolves
// package-benchmark. Run with `swift package --disable-sandbox benchmark` from this directory.
import Foundation
import PackageDescription

// A path dependency's identity is its directory name, which depends on where the repository is cloned.
let rootIdentity = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .lastPathComponent.lowercased()

let package = Package(
    name: "PageShareBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/package-benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "EROFSBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "EROFS", package: rootIdentity),
            ],
            path: "Benchmarks/EROFSBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        .executableTarget(
            name: "PageCacheBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "EROFS", package: rootIdentity),
                .product(name: "PageCache", package: rootIdentity),
            ],
            path: "Benchmarks/PageCacheBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
    ]
)
