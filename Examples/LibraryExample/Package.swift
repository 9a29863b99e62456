// swift-tools-version:6.0
// A program that links Sfumato as a library (by path, as a project beside it would); `make test` builds and runs it.
import PackageDescription

let package = Package(
    name: "LibraryExample",
    dependencies: [
        .package(name: "Sfumato", path: "../.."),
    ],
    targets: [
        .executableTarget(name: "LibraryExample", dependencies: [.product(name: "Sfumato", package: "Sfumato")]),
    ],
    swiftLanguageModes: [.v6]
)
