// swift-tools-version: 6.1
import PackageDescription

// Linux only: TUN/TAP, epoll, timerfd, signalfd, netlink and Linux's UDP GSO/GRO are the
// engine's ground. (PackageDescription has no Linux platform entry; this says it instead.)
#if !os(Linux)
#error("tunneld builds and runs on Linux only")
#endif

// Layout: Framework is the engine; every plugin depends on Framework only;
// tunneld is the one place that knows the list of stock plugins.
let package = Package(
    name: "tunneld",
    products: [
        .executable(name: "tunneld", targets: ["tunneld"]),
        .executable(name: "tunneld-bench", targets: ["tunneld-bench"]),
        .library(name: "Framework", targets: ["Framework"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.2.0"),
        .package(url: "https://github.com/ordo-one/malloc-interposer.git", from: "1.6.0"),
        // Monitoring: HTTP off the data path's thread, Prometheus exposition.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.1.0"),
    ],
    targets: [
        // System libraries from Debian, found with pkg-config.
        .systemLibrary(name: "CSodium", path: "Sources/CSodium", pkgConfig: "libsodium",
                       providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CYAML", path: "Sources/CYAML", pkgConfig: "yaml-0.1",
                       providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CNetlink", path: "Sources/CNetlink", pkgConfig: "libnl-genl-3.0",
                       providers: [.apt(["libnl-genl-3-dev"])]),
        // Linux ioctls and structs Swift cannot call directly (variadic ioctl, struct ifreq).
        .target(name: "CLinux", path: "Sources/CLinux"),

        .target(
            name: "Framework",
            dependencies: [
                "CYAML", "CLinux", "CNetlink",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
            ],
            path: "Sources/Framework"
        ),
        // Plugins: each depends on Framework only (plus the C library it wraps).
        .target(name: "Crypto", dependencies: ["Framework", "CSodium"], path: "Sources/Plugins/Crypto"),
        .target(name: "Monitoring", dependencies: [
                    "Framework",
                    .product(name: "NIOCore", package: "swift-nio"),
                    .product(name: "NIOPosix", package: "swift-nio"),
                    .product(name: "NIOHTTP1", package: "swift-nio"),
                    .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                    .product(name: "Metrics", package: "swift-metrics"),
                    .product(name: "Prometheus", package: "swift-prometheus"),
                    .product(name: "Logging", package: "swift-log"),
                ], path: "Sources/Plugins/Monitoring"),
        // Dynamic exclusivity checks off: the scheduler reads and updates each path's
        // class fields per packet, and the checks were 2.4 % of a bonding client's CPU
        // (against 0.2 % in p2p). Static checks still apply.
        .target(name: "Bonding", dependencies: ["Framework"], path: "Sources/Plugins/Bonding",
                swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]),
        // tunneldigger-compatible L2TPv3 broker and client; libsodium for the cookie MAC.
        .target(name: "L2TPv3", dependencies: ["Framework", "CSodium"], path: "Sources/Plugins/L2TPv3"),

        // An example of a user's own stages, registered beside the stock plugins.
        .target(name: "ExampleStages", dependencies: ["Framework"], path: "Sources/Examples/ExampleStages"),

        .executableTarget(
            name: "tunneld",
            dependencies: [
                "Framework", "Crypto", "Monitoring", "Bonding", "L2TPv3", "ExampleStages",
                // Only for --version: the versions of the libraries loaded at run time.
                "CSodium", "CYAML", "CNetlink",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/tunneld"
        ),
        .executableTarget(
            name: "tunneld-bench",
            dependencies: [
                "Framework", "Crypto", "Bonding", "CSodium", "ExampleStages",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MallocInterposerSwift", package: "malloc-interposer"),
            ],
            path: "Benchmarks/tunneld-bench"
        ),

        // Test tools run by the integration tests.
        .executableTarget(name: "udp-delay-relay", path: "Tests/Tools/udp-delay-relay"),
        // Many tunneldigger clients from one process, for the broker's scale benchmark.
        .executableTarget(name: "td-loadgen", path: "Tests/Tools/td-loadgen"),
        // libFuzzer targets for every parser of untrusted input: scripts/fuzz builds them with
        // -sanitize=fuzzer,address; an ordinary build makes a stub that says so.
        .executableTarget(
            name: "tunneld-fuzz",
            dependencies: [
                "Framework", "Crypto", "Bonding", "L2TPv3", "Monitoring", "ExampleStages",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Tests/Fuzz/tunneld-fuzz",
            // libFuzzer calls the targets from one thread; their state is plain globals.
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),

        // What several test targets share (a loopback UDP socket); a library, so test targets can depend on it.
        .target(name: "TestSupport", dependencies: ["Framework"], path: "Tests/TestSupport"),
        .testTarget(name: "FrameworkTests", dependencies: ["Framework", "Crypto", "Bonding", "L2TPv3", "ExampleStages", "TestSupport"], path: "Tests/FrameworkTests"),
        .testTarget(name: "IntegrationTests", dependencies: [], path: "Tests/IntegrationTests"),
        .testTarget(name: "CryptoTests", dependencies: ["Crypto", "Framework", "CSodium", "TestSupport", .product(name: "Logging", package: "swift-log")], path: "Tests/CryptoTests",
                    exclude: ["generate_record_vectors.py", "generate_noise_vectors.py", "generate_handshake_vectors.py", "noise_fixture.py"]),
        .testTarget(name: "L2TPv3Tests", dependencies: ["L2TPv3", "Framework"], path: "Tests/L2TPv3Tests"),
        .testTarget(name: "BondingTests", dependencies: ["Bonding", "Framework"], path: "Tests/BondingTests"),
        .testTarget(name: "MonitoringTests", dependencies: [
                        "Monitoring", "Framework",
                        .product(name: "Prometheus", package: "swift-prometheus"),
                        .product(name: "NIOCore", package: "swift-nio"),
                        .product(name: "NIOHTTP1", package: "swift-nio"),
                        .product(name: "NIOEmbedded", package: "swift-nio"),
                    ], path: "Tests/MonitoringTests"),
        .testTarget(name: "TunneldTests", dependencies: ["tunneld", "Framework", .product(name: "ArgumentParser", package: "swift-argument-parser")], path: "Tests/TunneldTests"),
        .testTarget(name: "SystemLibraryTests", dependencies: ["CSodium", "CYAML", "CNetlink"], path: "Tests/SystemLibraryTests"),
    ]
)
