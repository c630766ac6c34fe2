// swift-tools-version:6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .unsafeFlags(["-warnings-as-errors"])
]

/// The service links with lld and packs its ~88,000 relative relocations (DT_RELR, glibc 2.36+): 2 MiB less
/// for the dynamic loader to read at start, 2.3 MiB less idle RSS (BENCHMARKS.md).
let packedRelocations: [LinkerSetting] = [
    .unsafeFlags(["-Xclang-linker", "-fuse-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"])
]

let package = Package(
    name: "kube-actions-runner",
    products: [
        .executable(name: "kube-actions-runner", targets: ["kube-actions-runner"]),
        .library(name: "KubeActionsRunner", targets: ["KubeActionsRunner"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
    ],
    targets: [
        .target(name: "CLinuxShims"),
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("curl")]),
        .target(
            name: "KubeActionsRunner",
            dependencies: [
                "CLinuxShims",
                "CCurl",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "kube-actions-runner",
            dependencies: ["KubeActionsRunner"],
            swiftSettings: strict,
            linkerSettings: packedRelocations
        ),
        .executableTarget(
            name: "kar-bench",
            dependencies: ["KubeActionsRunner"],
            path: "Benchmarks/kar-bench",
            swiftSettings: strict
        ),
        .testTarget(
            name: "KubeActionsRunnerTests",
            dependencies: ["KubeActionsRunner"],
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
