// swift-tools-version:6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "PageShare",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "EROFS", targets: ["EROFS"]),
        .library(name: "PageCache", targets: ["PageCache"]),
        .executable(name: "pageshare", targets: ["pageshare"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        // Debian's C codec libraries (liblz4, libzstd, liblzma, zlib); headers only, no Swift.
        .target(
            name: "CCodecs",
            linkerSettings: [
                .linkedLibrary("lz4"), .linkedLibrary("zstd"), .linkedLibrary("lzma"), .linkedLibrary("z"),
            ]
        ),
        // Debian's libxxhash: XXH3-128, the identity of content-defined chunks (PageCache/Chunks).
        .target(name: "CXXHash", linkerSettings: [.linkedLibrary("xxhash")]),
        // Debian's libnghttp2: HTTP/2 for the data plane (PageShareServer/HTTP2).
        .target(name: "CNGHTTP2", linkerSettings: [.linkedLibrary("nghttp2")]),
        // xattr calls and makedev for extraction and the test oracle.
        .target(name: "CHostCalls"),
        .target(
            name: "EROFS",
            dependencies: [
                "CCodecs",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "PageCache",
            dependencies: [
                "EROFS", "CXXHash",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "PageShareServer",
            dependencies: [
                "PageCache", "EROFS", "CNGHTTP2",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "pageshare",
            dependencies: [
                "EROFS",
                "PageCache",
                "PageShareServer",
                "CHostCalls",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strictSettings,
            plugins: ["BuildInfo"]
        ),
        .target(
            name: "EROFSTestSupport",
            dependencies: [
                "EROFS", "CCodecs", "CHostCalls", .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/EROFSTestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "EROFSTests",
            dependencies: ["EROFS", "EROFSTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "PageCacheTests",
            dependencies: [
                "PageCache", "EROFS", "EROFSTestSupport",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "PageShareServerTests",
            dependencies: [
                "PageShareServer", "PageCache", "EROFS", "EROFSTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "pageshareTests",
            dependencies: ["EROFS", "EROFSTestSupport"],
            swiftSettings: strictSettings
        ),
        // The git commit of the build, for `pageshare --version`.
        .plugin(name: "BuildInfo", capability: .buildTool()),
    ],
    swiftLanguageModes: [.v6]
)

// The libFuzzer target is built only on request (`make fuzz`), with -sanitize=fuzzer,address.
if Context.environment["PAGESHARE_FUZZ"] != nil {
    package.targets.append(
        .executableTarget(name: "EROFSFuzzer", dependencies: ["EROFS"], path: "Fuzz/EROFSFuzzer")
    )
}
