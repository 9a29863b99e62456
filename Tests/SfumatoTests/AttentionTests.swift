import Sfumato
import Testing

/// Multi-head attention against `F.scaled_dot_product_attention` with diffusers' head split.
@Suite struct AttentionTests {
    static let cases = ["self", "cross", "causal", "odd", "peaked"]

    static func run(_ name: String, rowBlock: Int?) throws -> (Tensor, Tensor) {
        let file = try Fixtures.file("ops/attention_\(name).safetensors")
        let heads = try #require(Int(file.metadata["heads"] ?? ""))
        let causal = file.metadata["causal"] == "true"
        let out = attention(query: try file.tensor("q"), key: try file.tensor("k"), value: try file.tensor("v"),
                            heads: heads, causal: causal, rowBlock: rowBlock)
        return (out, try file.tensor("out"))
    }

    @Test(arguments: cases)
    func matchesPyTorch(_ name: String) throws {
        let (out, expected) = try Self.run(name, rowBlock: nil)
        expectClose(out, expected, tolerance: 1e-5, "attention \(name)")
    }

    /// Tiny row blocks (1, 3, 7 rows: none divides the lengths) exercise every block edge,
    /// including the causal mask's per-block key count.
    @Test(arguments: cases, [1, 3, 7])
    func smallRowBlocksMatchPyTorch(_ name: String, rowBlock: Int) throws {
        let (out, expected) = try Self.run(name, rowBlock: rowBlock)
        expectClose(out, expected, tolerance: 1e-5, "attention \(name), rowBlock \(rowBlock)")
    }
}
