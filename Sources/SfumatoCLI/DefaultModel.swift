import Foundation

/// The embedded default model shipped in Models/, used when --model is not given.
enum DefaultModel {
    static let name = "sfumato-shapes"

    /// SFUMATO_MODEL if set, else Models/<name> of the source tree this binary was built from.
    static func path() throws -> String {
        if let path = ProcessInfo.processInfo.environment["SFUMATO_MODEL"], !path.isEmpty { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let bundled = root.appendingPathComponent("Models").appendingPathComponent(name).path
        guard FileManager.default.fileExists(atPath: bundled) else {
            throw DefaultModelError(searched: bundled)
        }
        return bundled
    }
}

struct DefaultModelError: Error, CustomStringConvertible {
    let searched: String
    var description: String { "no --model given and no default model at \(searched); pass --model PATH or set SFUMATO_MODEL" }
}
