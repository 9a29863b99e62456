import Sfumato
import Testing

/// Multi-head attention against `F.scaled_dot_product_attention` with diffusers' head split,
/// on both kernel paths.
@Suite struct AttentionTests {
    static let cases = ["self", "cross", "causal", "odd", "peaked"]

    static func run(_ name: String, path: KernelPath, rowBlock: Int? = nil, keyBlock: Int? = nil) throws -> (Tensor, Tensor) {
        let file = try Fixtures.file("ops/attention_\(name).safetensors")
        let heads = try #require(Int(file.metadata["heads"] ?? ""))
        let causal = file.metadata["causal"] == "true"
        let (q, k, v) = (try file.tensor("q"), try file.tensor("k"), try file.tensor("v"))
        let out = Kernels.$path.withValue(path) {
            attention(query: q, key: k, value: v, heads: heads, causal: causal, rowBlock: rowBlock, keyBlock: keyBlock)
        }
        return (out, try file.tensor("out"))
    }

    @Test(arguments: cases, KernelPath.allCases)
    func matchesPyTorch(_ name: String, path: KernelPath) throws {
        let (out, expected) = try Self.run(name, path: path)
        expectClose(out, expected, tolerance: 1e-5, "attention \(name), \(path) path")
    }

    /// Tiny row blocks (1, 3, 7 rows: none divides the lengths) exercise every block edge,
    /// including the causal mask's per-block key count.
    @Test(arguments: cases, [1, 3, 7])
    func smallRowBlocksMatchPyTorch(_ name: String, rowBlock: Int) throws {
        let (out, expected) = try Self.run(name, path: .reference, rowBlock: rowBlock)
        expectClose(out, expected, tolerance: 1e-5, "attention \(name), rowBlock \(rowBlock)")
    }

    /// The fused path's online softmax across many key blocks (1, 5, 17 keys: ragged last blocks,
    /// causal rows whose whole block is masked) and query blocks.
    @Test(arguments: cases, [(1, 1), (3, 5), (7, 17), (16, 5)])
    func fusedBlocksMatchPyTorch(_ name: String, blocks: (Int, Int)) throws {
        let (out, expected) = try Self.run(name, path: .fast, rowBlock: blocks.0, keyBlock: blocks.1)
        expectClose(out, expected, tolerance: 1e-5, "fused attention \(name), blocks \(blocks)")
    }
}
