import Foundation
import Sfumato
import Testing

/// Committed reference fixtures written by the scripts in Tests/Reference (PyTorch outputs).
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    static func file(_ relative: String) throws -> SafeTensorsFile { try SafeTensorsFile(path: path(relative)) }
}

/// Records a failure unless shapes match and the relative error is within `tolerance`.
func expectClose(_ actual: Tensor, _ expected: Tensor, tolerance: Float, _ what: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.shape == expected.shape, "\(what): shape \(actual.shape) vs reference \(expected.shape)", sourceLocation: sourceLocation)
    guard actual.count == expected.count else { return }
    let error = maxRelativeError(actual, expected)
    #expect(error <= tolerance, "\(what): relative error \(error) above \(tolerance)", sourceLocation: sourceLocation)
}
