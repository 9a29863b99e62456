// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Sfumato",
    products: [
        // What server code links.
        .library(name: "Sfumato", targets: ["Sfumato"]),
        // An HTTP server speaking the AUTOMATIC1111 and OpenAI image APIs (Hummingbird); `sfumato serve` runs it.
        .library(name: "SfumatoServer", targets: ["SfumatoServer"]),
        // The command-line tool.
        .executable(name: "sfumato", targets: ["SfumatoCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
    ],
    targets: [
        // OpenBLAS's CBLAS plus LAPACKE. On Debian cblas.h lives in the
        // openblas-pthread include directory that pkg-config reports.
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]
        ),
        .systemLibrary(
            name: "CPNG",
            pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"])]
        ),
        // Hand-vectorised C kernels: AVX-512 and AVX2 variants chosen at run time (function target
        // attributes, no build flags, so the package stays usable as a dependency).
        .target(name: "CSfumatoKernels"),
        .target(name: "Sfumato", dependencies: ["COpenBLAS", "CPNG", "CSfumatoKernels"]),
        // The core library stays free of server dependencies; only this target links Hummingbird.
        .target(
            name: "SfumatoServer",
            dependencies: [
                "Sfumato",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "SfumatoCLI",
            dependencies: [
                "Sfumato",
                "SfumatoServer",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "SfumatoTests", dependencies: ["Sfumato"]),
        .testTarget(name: "SfumatoServerTests", dependencies: ["Sfumato", "SfumatoServer"]),
        // What the fuzz targets feed untrusted bytes to; the tests replay the seed corpus through it.
        .target(name: "SfumatoFuzzTargets", dependencies: ["Sfumato", "SfumatoServer"], path: "Tests/Fuzz/Targets"),
        .testTarget(name: "SfumatoFuzzTests", dependencies: ["SfumatoFuzzTargets"], path: "Tests/Fuzz/Tests"),
    ],
    swiftLanguageModes: [.v6]
)

// `make fuzz` sets SFUMATO_FUZZ to libFuzzer's runtime without its main (libclang_rt.fuzzer_no_main):
// the libFuzzer executable, and our own modules built with coverage and AddressSanitizer (dependencies
// stay as they are). Never set in ordinary builds, so the package keeps no unsafe flags.
if let fuzzerLibrary = Context.environment["SFUMATO_FUZZ"], !fuzzerLibrary.isEmpty {
    let instrumented: [SwiftSetting] = [.unsafeFlags(["-sanitize=fuzzer,address"])]
    for target in package.targets where ["Sfumato", "SfumatoServer", "SfumatoFuzzTargets"].contains(target.name) {
        target.swiftSettings = (target.swiftSettings ?? []) + instrumented
    }
    package.products.append(.executable(name: "sfumato-fuzz", targets: ["SfumatoFuzz"]))
    package.targets.append(.executableTarget(
        name: "SfumatoFuzz", dependencies: ["SfumatoFuzzTargets"], path: "Tests/Fuzz/Driver", swiftSettings: instrumented,
        linkerSettings: [.unsafeFlags(["-sanitize=address", "-Xlinker", fuzzerLibrary, "-lstdc++"])]))
}
