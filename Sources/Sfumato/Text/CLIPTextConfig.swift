/// The subset of transformers' `CLIPTextConfig` (text_encoder/config.json) that shapes the network.
public struct CLIPTextConfig: Codable, Equatable, Sendable {
    public enum Activation: String, Codable, Sendable {
        /// x * sigmoid(1.702 x), used by OpenAI CLIP.
        case quickGELU = "quick_gelu"
        /// The exact erf form.
        case gelu
    }

    public let hiddenSize: Int
    public let intermediateSize: Int
    public let numHiddenLayers: Int
    public let numAttentionHeads: Int
    public let maxPositionEmbeddings: Int
    public let vocabSize: Int
    public let hiddenAct: Activation
    public let layerNormEps: Float
    /// CLIPTextModelWithProjection's output width (`text_projection`); transformers' default 512.
    public let projectionDim: Int
    /// Where the pooled output is read: the first token with this id, or with transformers' legacy
    /// value 2 (SDXL's text_encoder_2 has it), the first token with the largest id (CLIP's end token).
    public let eosTokenID: Int

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case maxPositionEmbeddings = "max_position_embeddings", vocabSize = "vocab_size"
        case hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
        case projectionDim = "projection_dim", eosTokenID = "eos_token_id"
    }

    public init(hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
                maxPositionEmbeddings: Int, vocabSize: Int, hiddenAct: Activation = .quickGELU,
                layerNormEps: Float = 1e-5, projectionDim: Int = 512, eosTokenID: Int = 49407) throws(ModelConfigError) {
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.vocabSize = vocabSize
        self.hiddenAct = hiddenAct
        self.layerNormEps = layerNormEps
        self.projectionDim = projectionDim
        self.eosTokenID = eosTokenID
        try validate()
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        hiddenSize = try container.decode(Int.self, forKey: .hiddenSize)
        intermediateSize = try container.decode(Int.self, forKey: .intermediateSize)
        numHiddenLayers = try container.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try container.decode(Int.self, forKey: .numAttentionHeads)
        maxPositionEmbeddings = try container.decode(Int.self, forKey: .maxPositionEmbeddings)
        vocabSize = try container.decode(Int.self, forKey: .vocabSize)
        // transformers' defaults when a file leaves these out.
        let activation = try container.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "quick_gelu"
        guard let hiddenAct = Activation(rawValue: activation) else {
            throw ModelConfigError("hidden_act \"\(activation)\" is not supported (quick_gelu or gelu)")
        }
        self.hiddenAct = hiddenAct
        layerNormEps = try container.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? 1e-5
        projectionDim = try container.decodeIfPresent(Int.self, forKey: .projectionDim) ?? 512
        eosTokenID = try container.decodeIfPresent(Int.self, forKey: .eosTokenID) ?? 49407
        try validate()
    }

    /// Reads text_encoder/config.json.
    public init(contentsOf path: String) throws(ModelConfigError) {
        self = try ModelConfigFile.load(CLIPTextConfig.self, path: path)
    }

    private func validate() throws(ModelConfigError) {
        let sizes = [("hidden_size", hiddenSize), ("intermediate_size", intermediateSize), ("num_hidden_layers", numHiddenLayers),
                     ("num_attention_heads", numAttentionHeads), ("max_position_embeddings", maxPositionEmbeddings), ("vocab_size", vocabSize),
                     ("projection_dim", projectionDim)]
        for (key, value) in sizes {
            try ModelConfigFile.require(value > 0 && value <= 1 << 24, "\(key) \(value) is out of range")
        }
        try ModelConfigFile.require(hiddenSize % numAttentionHeads == 0,
                                    "hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        try ModelConfigFile.require(layerNormEps > 0 && layerNormEps.isFinite, "layer_norm_eps \(layerNormEps) must be positive")
    }
}
