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
        .executable(name: "kube-actions-runner", targets: ["kube-actions-runner"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        // Layers, each depending only on those listed before it (ARCHITECTURE.md draws the graph; a test checks it).
        .target(name: "CLinuxShims"),
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("curl")]),
        .target(name: "Support", swiftSettings: strict),
        .target(
            name: "Observability",
            dependencies: [
                "Support", "CLinuxShims",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "HTTPServer",
            dependencies: [
                "Support", "CLinuxShims",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(name: "HTTPClient", dependencies: ["Support", "CCurl"], swiftSettings: strict),
        .target(
            name: "GitHub",
            dependencies: [
                "Support", "HTTPClient", "Observability",
                // RS256 for the GitHub App's JWT (RSASSA-PKCS1-v1_5 with SHA-256).
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Kubernetes",
            dependencies: [
                "Support", "HTTPClient", "Observability",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Runners",
            dependencies: [
                "Support", "Observability", "GitHub", "Kubernetes",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Webhook",
            dependencies: [
                "Support", "Observability", "HTTPServer", "Runners",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "App",
            dependencies: [
                "Support", "CLinuxShims", "Observability", "HTTPServer", "HTTPClient", "GitHub", "Kubernetes",
                "Runners",
                "Webhook",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // `render` writes YAML.
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "kube-actions-runner",
            dependencies: [
                "App", "Support", "Observability",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict,
            linkerSettings: packedRelocations
        ),
        .executableTarget(
            name: "kar-bench",
            dependencies: [
                "Support", "HTTPServer", "HTTPClient", "Runners", "Webhook", "App",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/kar-bench",
            swiftSettings: strict
        ),
        // Test doubles and test clients: the tests and benchmarks use them; the service binary does not link them.
        .target(
            name: "TestSupport",
            dependencies: [
                "Support", "Observability", "HTTPServer", "HTTPClient", "GitHub", "Kubernetes", "Runners", "Webhook",
                "App",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "KubeActionsRunnerTests",
            dependencies: [
                "TestSupport", "Support", "Observability", "HTTPServer", "HTTPClient", "GitHub", "Kubernetes",
                "Runners",
                "Webhook", "App", "CLinuxShims",
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
