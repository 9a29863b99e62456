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

    /// Head sizes that leave every ragged tile of the C kernels (1 to 5 features, rows not a
    /// multiple of 16, key tiles of 1 to 5), with and without the causal mask, on every kernel
    /// variant against the reference path.
    @Test(arguments: [(1, 19, 23), (3, 1, 7), (5, 33, 12), (13, 17, 40), (64, 40, 130)], [false, true])
    func fastPathsMatchReferenceForOddShapes(_ shape: (Int, Int, Int), causal: Bool) {
        let (headSize, queries, keys) = shape
        var generator = SplitMix(seed: UInt64(headSize * 1000 + queries))
        let q = generator.tensor([2, queries, 3 * headSize])
        let k = generator.tensor([2, keys, 3 * headSize]), v = generator.tensor([2, keys, 3 * headSize])
        let expected = Kernels.$path.withValue(.reference) { attention(query: q, key: k, value: v, heads: 3, causal: causal) }
        for variant in KernelVariant.available {
            let out = Kernels.$variant.withValue(variant) {
                attention(query: q, key: k, value: v, heads: 3, causal: causal, rowBlock: 16, keyBlock: 11)
            }
            expectClose(out, expected, tolerance: 1e-5, "head size \(headSize), \(queries)x\(keys), causal \(causal), \(variant)")
        }
    }
}
