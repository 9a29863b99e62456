import Sfumato
import Testing

/// Every C kernel variant this CPU can run (AVX-512, AVX2+FMA, portable) and the reference path
/// against the same PyTorch fixtures.
@Suite struct KernelVariantTests {
    static let variants = KernelVariant.available

    static func with(_ isa: KernelVariant, _ body: () throws -> Void) throws {
        try Kernels.$variant.withValue(isa) { try body() }
    }

    @Test(arguments: variants)
    func groupNormMatchesPyTorch(_ isa: KernelVariant) throws {
        try Self.with(isa) {
            for name in ["g8", "g32", "flat", "3d"] {
                let file = try Fixtures.file("ops/group_norm_\(name).safetensors")
                let x = try file.tensor("x"), weight = try file.tensor("weight"), bias = try file.tensor("bias")
                let groups = try #require(Int(file.metadata["groups"] ?? ""))
                let eps = try #require(Float(file.metadata["eps"] ?? ""))
                let (expected, expectedSiLU) = (try file.tensor("out"), try file.tensor("out_silu"))
                for path in KernelPath.allCases {
                    Kernels.$path.withValue(path) {
                        expectClose(groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps), expected,
                                    tolerance: 1e-5, "group_norm \(name), \(isa), \(path)")
                        expectClose(groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps, silu: true),
                                    expectedSiLU, tolerance: 1e-5, "group_norm+silu \(name), \(isa), \(path)")
                    }
                }
            }
        }
    }

    @Test(arguments: variants)
    func gegluMatchesDiffusers(_ isa: KernelVariant) throws {
        try Self.with(isa) {
            let file = try Fixtures.file("ops/geglu.safetensors")
            let x = try file.tensor("x"), expected = try file.tensor("out")
            for path in KernelPath.allCases {
                Kernels.$path.withValue(path) { expectClose(geglu(x), expected, tolerance: 1e-5, "geglu, \(isa), \(path)") }
            }
        }
    }

    @Test(arguments: variants)
    func fusedAttentionMatchesPyTorch(_ isa: KernelVariant) throws {
        try Self.with(isa) {
            for name in AttentionTests.cases {
                // Key blocks of 5: ragged tails of every vector width and the online softmax's rescaling.
                let (out, expected) = try AttentionTests.run(name, path: .fast, rowBlock: 3, keyBlock: 5)
                expectClose(out, expected, tolerance: 1e-5, "fused attention \(name), \(isa)")
                let (whole, _) = try AttentionTests.run(name, path: .fast)
                expectClose(whole, expected, tolerance: 1e-5, "fused attention \(name), \(isa), default blocks")
            }
        }
    }

    /// A group whose mean is large against its spread: the statistics and the normalisation must
    /// work on deviations from the mean, or the result cancels away. Checked against Double math.
    @Test(arguments: variants)
    func groupNormKeepsPrecisionFarFromZero(_ isa: KernelVariant) throws {
        try Self.with(isa) {
            let values = (0..<4096).map { 1000 + Float($0 % 8) * 0.01 }
            let mean = values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
            let variance = values.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(values.count)
            let expected = Tensor(shape: [1, 2, 2048], values: values.map { Float((Double($0) - mean) / variance.squareRoot()) })
            let x = Tensor(shape: [1, 2, 2048], values: values)
            let out = groupNorm(x, groups: 1, weight: Tensor(repeating: 1, shape: [2]), bias: Tensor(repeating: 0, shape: [2]), eps: 0)
            #expect(maxRelativeError(out, expected) < 1e-3, "\(isa)")
        }
    }
}

/// The fused GEGLU projection against projection-then-gate on the reference path, over row
/// blocks that do not divide the rows.
@Test func linearGEGLUMatchesProjectionThenGate() {
    var generator = SplitMix(seed: 3)
    let x = generator.tensor([2, 1100, 24])
    let weight = generator.tensor([40, 24])
    let bias = generator.tensor([40])
    let reference = Kernels.$path.withValue(.reference) { geglu(linear(x, weight: weight, bias: bias)) }
    let fused = linearGEGLU(x, weight: weight, bias: bias)
    #expect(fused.shape == [2, 1100, 20])
    expectClose(fused, reference, tolerance: 1e-5, "linear + geglu")
}
