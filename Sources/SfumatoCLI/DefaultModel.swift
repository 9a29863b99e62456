import Foundation

/// The embedded default model shipped in Models/, used when --model is not given.
enum DefaultModel {
    static let name = "sfumato-shapes"

    /// Where the default model is looked for, in order: SFUMATO_MODEL; PREFIX/share/sfumato/<name>
    /// next to an installed binary (PREFIX/bin/sfumato, as `make install` lays it out); Models/<name>
    /// of the source tree this binary was built from (development builds).
    static func candidates() -> [String] {
        if let path = ProcessInfo.processInfo.environment["SFUMATO_MODEL"], !path.isEmpty { return [path] }
        var paths: [String] = []
        // /proc/self/exe names the binary itself, wherever it was started from (PATH, symlink).
        if let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            let prefix = URL(fileURLWithPath: executable).deletingLastPathComponent().deletingLastPathComponent()
            paths.append(prefix.appendingPathComponent("share/sfumato").appendingPathComponent(name).path)
        }
        let sourceRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        paths.append(sourceRoot.appendingPathComponent("Models").appendingPathComponent(name).path)
        return paths
    }

    static func path() throws -> String {
        let searched = candidates()
        if ProcessInfo.processInfo.environment["SFUMATO_MODEL"].map({ !$0.isEmpty }) == true { return searched[0] }
        guard let found = searched.first(where: { FileManager.default.fileExists(atPath: $0 + "/model_index.json") }) else {
            throw DefaultModelError(searched: searched)
        }
        return found
    }
}

struct DefaultModelError: Error, CustomStringConvertible {
    let searched: [String]
    var description: String {
        "no --model given and no default model at \(searched.joined(separator: " or ")); pass --model PATH or set SFUMATO_MODEL"
    }
}
