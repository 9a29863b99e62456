import Sfumato
import Testing

/// GroupNorm and LayerNorm against PyTorch (`F.group_norm`, `F.layer_norm`).
@Suite struct NormalizationTests {
    @Test(arguments: ["g8", "g32", "flat", "3d"])
    func groupNormMatchesPyTorch(_ name: String) throws {
        let file = try Fixtures.file("ops/group_norm_\(name).safetensors")
        let x = try file.tensor("x"), weight = try file.tensor("weight"), bias = try file.tensor("bias")
        let groups = try #require(Int(file.metadata["groups"] ?? ""))
        let eps = try #require(Float(file.metadata["eps"] ?? ""))
        let plain = groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps)
        expectClose(plain, try file.tensor("out"), tolerance: 1e-5, "group_norm \(name)")
        let fused = groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps, silu: true)
        expectClose(fused, try file.tensor("out_silu"), tolerance: 1e-5, "group_norm+silu \(name)")
    }

    @Test(arguments: ["layer_norm", "layer_norm_odd"])
    func layerNormMatchesPyTorch(_ name: String) throws {
        let file = try Fixtures.file("ops/\(name).safetensors")
        let eps = try #require(Float(file.metadata["eps"] ?? ""))
        let out = layerNorm(try file.tensor("x"), weight: try file.tensor("weight"), bias: try file.tensor("bias"), eps: eps)
        expectClose(out, try file.tensor("out"), tolerance: 1e-5, name)
    }

    /// A constant group has variance 0: the output is exactly the bias, with no NaN from 0/0.
    @Test func constantGroupGivesBias() {
        let x = Tensor(repeating: 7, shape: [1, 4, 3])
        let out = groupNorm(x, groups: 2, weight: Tensor(repeating: 2, shape: [4]),
                            bias: Tensor(shape: [4], values: [1, 2, 3, 4]), eps: 1e-5)
        #expect(out.toArray() == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4])
    }
}
