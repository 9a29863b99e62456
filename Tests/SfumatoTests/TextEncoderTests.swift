import Foundation
import Sfumato
import Testing

/// CLIPTextModel against transformers on a tiny randomly initialised model saved with save_pretrained.
@Suite struct TextEncoderTests {
    static func config() throws -> CLIPTextConfig { try CLIPTextConfig(contentsOf: Fixtures.path("tiny/text_encoder/config.json")) }
    static func weights() throws -> SafeTensorsFile { try Fixtures.file("tiny/text_encoder/model.safetensors") }

    /// The fixture's two prompts, padded to 77 with the end token.
    static func ids() throws -> [[Int32]] {
        let ids = try Fixtures.file("nets/text_encoder.safetensors").tensor("input_ids")
        return (0..<ids.shape[0]).map { row in (0..<ids.shape[1]).map { Int32(ids[flat: row * ids.shape[1] + $0]) } }
    }

    static func reference() throws -> Tensor { try Fixtures.file("nets/text_encoder.safetensors").tensor("last_hidden_state") }

    @Test func readsConfig() throws {
        let config = try Self.config()
        #expect(config.hiddenSize == 32 && config.numHiddenLayers == 2 && config.numAttentionHeads == 4)
        #expect(config.intermediateSize == 64 && config.vocabSize == 1000 && config.maxPositionEmbeddings == 77)
        #expect(config.hiddenAct == .quickGELU && config.layerNormEps == 1e-5)
    }

    /// transformers 5.x names (no "text_model." prefix), as the fixture was saved.
    @Test func matchesTransformers() throws {
        let model = try CLIPTextModel(config: try Self.config(), weights: try Self.weights())
        expectClose(try model(try Self.ids()), try Self.reference(), tolerance: 1e-4, "last_hidden_state")
    }

    /// transformers 4.x names with the prefix, plus the position_ids buffer older files carry.
    @Test func acceptsTextModelPrefixAndPositionIds() throws {
        let prefixed = RenamedTensorSource(try Self.weights(), rename: { "text_model." + $0 })
        let withPositionIds = CombinedTensorSource([prefixed, PositionIdsSource()])
        let model = try CLIPTextModel(config: try Self.config(), weights: withPositionIds)
        expectClose(try model(try Self.ids()), try Self.reference(), tolerance: 1e-4, "last_hidden_state (prefixed names)")
    }

    /// One sequence alone gives the same rows as inside the batch; a shorter one works too (causal mask).
    @Test func handlesSingleAndShortSequences() throws {
        let model = try CLIPTextModel(config: try Self.config(), weights: try Self.weights())
        let ids = try Self.ids()
        let reference = try Self.reference()
        expectClose(try model([ids[1]]), reference.slice(1..<2), tolerance: 1e-4, "second prompt alone")
        let prefix = Tensor(shape: [1, 10, 32], values: Array(reference.slice(0..<1).toArray().prefix(320)))
        expectClose(try model([Array(ids[0].prefix(10))]), prefix, tolerance: 1e-4, "first 10 tokens")
    }

    @Test func rejectsBadTokenIds() throws {
        let model = try CLIPTextModel(config: try Self.config(), weights: try Self.weights())
        var ids = try Self.ids()
        ids[1][5] = 1000
        #expect(throws: ModelInputError.tokenOutOfRange(model: "text encoder", row: 1, position: 5, id: 1000, vocabularySize: 1000)) { try model(ids) }
        ids[1][5] = -1
        #expect(throws: ModelInputError.tokenOutOfRange(model: "text encoder", row: 1, position: 5, id: -1, vocabularySize: 1000)) { try model(ids) }
        #expect(throws: ModelInputError.emptyBatch(model: "text encoder")) { try model([]) }
        #expect(throws: ModelInputError.sequenceLength(model: "text encoder", row: 0, length: 78, maximum: 77)) { try model([Array(repeating: 1, count: 78)]) }
        #expect(throws: ModelInputError.sequenceLength(model: "text encoder", row: 1, length: 0, maximum: 77)) { try model([[1], []]) }
        #expect(throws: ModelInputError.raggedBatch(model: "text encoder", row: 1, length: 2, expected: 3)) { try model([[1, 2, 3], [1, 2]]) }
    }

    /// A config asking for width 48 against width-32 weights: every tensor that depends on the width is listed.
    @Test func reportsMisshapedTensorsByName() throws {
        let wide = try CLIPTextConfig(hiddenSize: 48, intermediateSize: 64, numHiddenLayers: 2, numAttentionHeads: 4,
                                      maxPositionEmbeddings: 77, vocabSize: 1000)
        let mismatch = #expect(throws: ParameterMismatch.self) { try CLIPTextModel(config: wide, weights: try Self.weights()) }
        let names = Set(mismatch?.misshaped.map(\.name) ?? [])
        #expect(names.contains("embeddings.token_embedding.weight"))
        #expect(names.contains("encoder.layers.1.self_attn.q_proj.weight"))
        #expect(names.contains("final_layer_norm.bias"))
        #expect(!names.contains("encoder.layers.0.mlp.fc1.bias"), "fc1.bias is [intermediate] and fits")
        #expect(names.count == 34, "all but the two fc1 biases depend on the width, \(names.count) listed")
        #expect(mismatch?.description.contains("encoder.layers.0.mlp.fc1.weight is [64, 32], expected [64, 48]") == true)
    }

    /// A missing tensor and a surplus layer are both named.
    @Test func reportsMissingAndUnexpectedTensors() throws {
        let weights = RenamedTensorSource(try Self.weights(), keep: { $0 != "final_layer_norm.bias" })
        let oneLayer = try CLIPTextConfig(hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 1, numAttentionHeads: 4,
                                          maxPositionEmbeddings: 77, vocabSize: 1000)
        let mismatch = #expect(throws: ParameterMismatch.self) { try CLIPTextModel(config: oneLayer, weights: weights) }
        #expect(mismatch?.missing.map(\.name) == ["final_layer_norm.bias"])
        #expect(mismatch?.unexpected.count == 16)
        #expect(mismatch?.unexpected.allSatisfy { $0.name.hasPrefix("encoder.layers.1.") } == true)
    }

    @Test func refusesUnknownActivationByName() throws {
        var json = try String(contentsOfFile: Fixtures.path("tiny/text_encoder/config.json"), encoding: .utf8)
        json = json.replacingOccurrences(of: "\"quick_gelu\"", with: "\"relu\"")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sfumato-clip-\(UUID().uuidString).json").path
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: ModelConfigError.self) { try CLIPTextConfig(contentsOf: path) }
        #expect(error?.description.contains("relu") == true)
        #expect(error?.path == path)
    }
}

/// The constant position_ids buffer transformers 4.x checkpoints store next to the weights.
private struct PositionIdsSource: TensorSource {
    var tensorNames: [String] { ["text_model.embeddings.position_ids"] }
    func shape(of name: String) -> [Int]? { name == tensorNames[0] ? [1, 77] : nil }
    func tensor(_ name: String) throws(WeightError) -> Tensor {
        Tensor(shape: [1, 77], values: (0..<77).map(Float.init))
    }
}
