// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Sfumato",
    products: [
        // What server code links.
        .library(name: "Sfumato", targets: ["Sfumato"]),
        // The command-line tool.
        .executable(name: "sfumato", targets: ["SfumatoCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
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
        .executableTarget(
            name: "SfumatoCLI",
            dependencies: [
                "Sfumato",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "SfumatoTests", dependencies: ["Sfumato"]),
    ],
    swiftLanguageModes: [.v6]
)
