import Foundation
import Sfumato
import Testing

/// linear and conv2d against torch.nn.functional (Tests/Reference/fixtures_ops_a.py).
@Suite struct LinearConvTests {
    /// Reductions here are at most K = 576 long; float32 GEMM stays well inside 1e-5 of torch.
    static let tolerance: Float = 1e-5

    @Test func linearMatchesTorch() throws {
        let file = try Fixtures.file("ops/linear.safetensors")
        let cases = try #require(file.metadata["cases"]).split(separator: " ")
        #expect(cases == ["tokens", "matrix", "rank4"])
        for name in cases {
            let bias = file.names.contains("\(name).b") ? try file.tensor("\(name).b") : nil
            let y = linear(try file.tensor("\(name).x"), weight: try file.tensor("\(name).w"), bias: bias)
            expectClose(y, try file.tensor("\(name).y"), tolerance: Self.tolerance, "linear \(name)")
        }
    }

    /// Every case with the default band size, with one-row bands, and with two-row bands
    /// (which leave a one-row remainder whenever H' is odd), on both kernel paths.
    @Test(arguments: KernelPath.allCases)
    func conv2dMatchesTorch(path: KernelPath) throws {
        let file = try Fixtures.file("ops/conv2d.safetensors")
        // "name=stride,padding" separated by spaces.
        let cases = try #require(file.metadata["cases"]).split(separator: " ").map { $0.split(separator: "=") }
        #expect(cases.count == 10)
        for parts in cases {
            try #require(parts.count == 2)
            let name = parts[0]
            let config = parts[1].split(separator: ",").compactMap { Int($0) }
            try #require(config.count == 2)
            let (x, weight) = (try file.tensor("\(name).x"), try file.tensor("\(name).w"))
            let bias = file.names.contains("\(name).b") ? try file.tensor("\(name).b") : nil
            let expected = try file.tensor("\(name).y")
            let rowElements = weight.shape[1] * weight.shape[2] * weight.shape[3] * expected.shape[3]
            for limit in [conv2dDefaultColumnElements, 1, 2 * rowElements] {
                let y = Kernels.$path.withValue(path) {
                    conv2d(x, weight: weight, bias: bias, stride: config[0], padding: config[1], maxColumnElements: limit)
                }
                expectClose(y, expected, tolerance: Self.tolerance, "conv2d \(name) column limit \(limit), \(path) path")
            }
        }
    }

    /// Zero input features or channels: torch returns the bias everywhere.
    @Test func emptyReductionGivesBias() {
        let bias = Tensor(shape: [3], values: [1, -2, 0.5])
        let y = linear(Tensor(zeros: [2, 0]), weight: Tensor(zeros: [3, 0]), bias: bias)
        #expect(y.shape == [2, 3] && y.toArray() == [1, -2, 0.5, 1, -2, 0.5])
        let z = conv2d(Tensor(zeros: [1, 0, 2, 2]), weight: Tensor(zeros: [3, 0, 3, 3]), bias: bias, padding: 1)
        #expect(z.shape == [1, 3, 2, 2] && z.toArray() == [1, 1, 1, 1, -2, -2, -2, -2, 0.5, 0.5, 0.5, 0.5])
    }

    /// A 64-channel 256x256 conv: im2col untiled would need 151 MB. The default bands (28 rows,
    /// not a divisor of 256) must give what one untiled GEMM gives, and both must agree with a
    /// direct double-precision sum at sampled outputs, including the borders. (The reference path:
    /// the fast one takes Winograd here, which has no bands.)
    @Test func largeConvTilesLikeUntiled() {
        var generator = SplitMix(seed: 7)
        let x = generator.tensor([1, 64, 256, 256])
        let weight = generator.tensor([4, 64, 3, 3])
        let bias = generator.tensor([4])
        let (tiled, untiled) = Kernels.$path.withValue(.reference) {
            (conv2d(x, weight: weight, bias: bias, padding: 1), conv2d(x, weight: weight, bias: bias, padding: 1, maxColumnElements: .max))
        }
        expectClose(tiled, untiled, tolerance: 1e-6, "tiled vs untiled")
        for (o, oy, ox) in [(0, 0, 0), (1, 255, 255), (2, 27, 100), (3, 28, 0), (0, 56, 255), (3, 200, 17), (1, 255, 3)] {
            var sum = Double(bias[flat: o])
            for c in 0..<64 {
                for i in 0..<3 {
                    for j in 0..<3 {
                        let (iy, ix) = (oy - 1 + i, ox - 1 + j)
                        guard (0..<256).contains(iy), (0..<256).contains(ix) else { continue }
                        sum += Double(x[flat: (c * 256 + iy) * 256 + ix]) * Double(weight[flat: ((o * 64 + c) * 3 + i) * 3 + j])
                    }
                }
            }
            let value = tiled[flat: (o * 256 + oy) * 256 + ox]
            #expect(abs(Double(value) - sum) <= 1e-4 * max(1, abs(sum)), "output (\(o), \(oy), \(ox)): \(value) vs \(sum)")
        }
    }
}

/// Deterministic uniform values in [-1, 1) for tests too large for a committed fixture.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> Float {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Float(z >> 40) / Float(1 << 23) - 1
    }

    mutating func tensor(_ shape: [Int]) -> Tensor {
        let result = Tensor(uninitializedShape: shape)
        for index in 0..<result.count { result[flat: index] = next() }
        return result
    }
}
