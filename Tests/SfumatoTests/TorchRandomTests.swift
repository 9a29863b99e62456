import Foundation
import Sfumato
import Testing

/// TorchRandom against torch.randn values written by Tests/Reference/fixtures_random.py.
@Suite struct TorchRandomTests {
    static let seeds: [UInt64] = [0, 42, 1 << 32 + 7, 1_234_567]
    static let shapes: [[Int]] = [[1, 4, 8, 8], [2, 4, 64, 64], [7], [15], [16], [17], [33], [1, 4, 9, 9], [1, 4, 16, 16]]
    static let sequence: [[Int]] = [[5], [20], [3], [1]]

    /// Bit for bit when the fixture came from torch's AVX2 kernel (which TorchRandom reproduces) or
    /// from the double path (under 16 elements). Otherwise torch used libm's float log/sin/cos and
    /// the bound is |a - e| <= 1e-6 * max(1, |e|), i.e. about 8 float ulps at the values' scale.
    static func compare(_ actual: [Float], _ expected: [Float], exact: Bool, _ what: String,
                        sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(actual.count == expected.count, "\(what): \(actual.count) values vs \(expected.count)", sourceLocation: sourceLocation)
        var worst: Float = 0
        var worstIndex = 0
        for (index, (a, e)) in zip(actual, expected).enumerated() {
            let error = abs(a - e) / max(1, abs(e))
            if !(error <= worst) { worst = error.isNaN ? .infinity : error; worstIndex = index }
        }
        let bound: Float = exact ? 0 : 1e-6
        #expect(worst <= bound, "\(what): scaled error \(worst) at \(worstIndex) above \(bound)", sourceLocation: sourceLocation)
    }

    static func check(_ values: Tensor, name: String, file: SafeTensorsFile) throws {
        let flat = values.toArray()
        if file.names.contains(name) {
            let expected = try file.tensor(name)
            #expect(expected.shape == values.shape, "\(name): shape \(values.shape) vs \(expected.shape)")
            compare(flat, expected.toArray(), exact: values.count < 16 || fromAVX2(file), name)
            return
        }
        compare(Array(flat.prefix(64)), try file.tensor(name + "_head").toArray(), exact: fromAVX2(file), name + " head")
        compare(Array(flat.suffix(64)), try file.tensor(name + "_tail").toArray(), exact: fromAVX2(file), name + " tail")
        let stats = try file.tensor(name + "_stats").toArray()
        var sum = 0.0, squares = 0.0
        for value in flat { sum += Double(value); squares += Double(value) * Double(value) }
        // Every middle value enters these sums; a wrong block or a skipped draw moves them by far more.
        #expect(abs(sum - Double(stats[0])) < 1e-3, "\(name): sum \(sum) vs \(stats[0])")
        #expect(abs(squares - Double(stats[1])) < 1e-5 * Double(stats[1]), "\(name): sum of squares \(squares) vs \(stats[1])")
    }

    static func fromAVX2(_ file: SafeTensorsFile) -> Bool { file.metadata["cpu_capability"] == "AVX2" }

    static func key(_ shape: [Int]) -> String { shape.map(String.init).joined(separator: "x") }

    @Test(arguments: seeds)
    func freshGeneratorPerShape(seed: UInt64) throws {
        let file = try Fixtures.file("random/randn.safetensors")
        for shape in Self.shapes {
            var random = TorchRandom(seed: seed)
            try Self.check(random.normal(shape: shape), name: "s\(seed)_\(Self.key(shape))", file: file)
        }
    }

    @Test(arguments: seeds)
    func consecutiveCallsContinueTheStream(seed: UInt64) throws {
        let file = try Fixtures.file("random/randn.safetensors")
        var random = TorchRandom(seed: seed)
        for (step, shape) in Self.sequence.enumerated() {
            try Self.check(random.normal(shape: shape), name: "s\(seed)_seq\(step)_\(Self.key(shape))", file: file)
        }
    }

    @Test func sameSeedSameValuesAndEmptyShape() {
        var first = TorchRandom(seed: 7)
        var second = TorchRandom(seed: 7)
        #expect(first.normal(shape: [3, 5]).toArray() == second.normal(shape: [3, 5]).toArray())
        #expect(first.normal(shape: [0, 4]).count == 0)
    }
}
