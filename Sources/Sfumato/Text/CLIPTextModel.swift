/// transformers' `CLIPTextModel`: token and position embeddings, pre-LayerNorm
/// transformer layers with causal self-attention, final LayerNorm. Stable
/// Diffusion 1.x conditions the UNet on its last hidden state.
public final class CLIPTextModel: Sendable {
    public let config: CLIPTextConfig
    let token_embedding: Tensor
    let position_embedding: Tensor
    let layers: [CLIPEncoderLayer]
    let final_layer_norm: LayerNorm

    /// Loads the weights from `weights`, named either "text_model.embeddings..." (transformers 4.x
    /// and single-file checkpoints after prefix stripping) or "embeddings..." (transformers 5.x).
    public convenience init(config: CLIPTextConfig, weights: any TensorSource) throws(ParameterMismatch) {
        let root = ParameterLoader(source: weights, component: "text encoder")
        self.init(root.contains("text_model.embeddings.token_embedding.weight") ? root.scoped("text_model") : root, config: config)
        // position_ids is a constant buffer [0, 1, ..., 76] that older checkpoints store.
        try root.finish(ignoring: { $0.hasSuffix("embeddings.position_ids") })
    }

    /// Reads the parameters through `loader`, scoped to the text model ("embeddings...", "encoder...").
    init(_ loader: ParameterLoader, config: CLIPTextConfig) {
        self.config = config
        let width = config.hiddenSize
        token_embedding = loader("embeddings.token_embedding.weight", shape: [config.vocabSize, width])
        position_embedding = loader("embeddings.position_embedding.weight", shape: [config.maxPositionEmbeddings, width])
        layers = (0..<config.numHiddenLayers).map { CLIPEncoderLayer(loader.scoped("encoder.layers.\($0)"), config: config) }
        final_layer_norm = LayerNorm(loader.scoped("final_layer_norm"), features: width, eps: config.layerNormEps)
    }

    /// Token ids [batch][length] (all rows the same length, at most max_position_embeddings)
    /// -> last hidden state [batch, length, hidden_size].
    ///
    /// `clipSkip` counts as AUTOMATIC1111 does: 1 is the last layer, 2 the penultimate one (the
    /// output of all but the last layer, through the final layer norm, as A1111 and diffusers'
    /// `clip_skip=1` take it), up to `num_hidden_layers` (the first layer only).
    public func callAsFunction(_ ids: [[Int32]], clipSkip: Int = 1) throws(ModelInputError) -> Tensor {
        try validate(ids)
        guard (1...config.numHiddenLayers).contains(clipSkip) else {
            throw .clipSkip(model: "text encoder", value: clipSkip, layers: config.numHiddenLayers)
        }
        var hidden = embed(ids)
        for layer in layers.dropLast(clipSkip - 1) { hidden = layer(hidden) }
        return final_layer_norm(hidden)
    }

    /// SDXL's conditioning: the output of layer L - `clipSkip` (of L), without the final layer norm, as
    /// diffusers takes `hidden_states[-(clip_skip + 2)]`; clip skip 1 (the default) is the penultimate layer's
    /// output SDXL was trained on, so our clip skip is diffusers' plus one, as for SD 1.x. [batch, length, hidden_size]
    public func penultimateHiddenStates(_ ids: [[Int32]], clipSkip: Int = 1) throws(ModelInputError) -> Tensor {
        try validate(ids)
        try validatePenultimate(clipSkip: clipSkip)
        return run(embed(ids), layers: 0..<(config.numHiddenLayers - clipSkip))
    }

    func validatePenultimate(clipSkip: Int) throws(ModelInputError) {
        guard (1..<config.numHiddenLayers).contains(clipSkip) else {
            throw .penultimateClipSkip(model: "text encoder", value: clipSkip, layers: config.numHiddenLayers)
        }
    }

    func run(_ hidden: Tensor, layers range: Range<Int>) -> Tensor {
        var hidden = hidden
        for layer in layers[range] { hidden = layer(hidden) }
        return hidden
    }

    func validate(_ ids: [[Int32]]) throws(ModelInputError) {
        let model = "text encoder"
        guard let first = ids.first else { throw .emptyBatch(model: model) }
        for (row, sequence) in ids.enumerated() {
            guard (1...config.maxPositionEmbeddings).contains(sequence.count) else {
                throw .sequenceLength(model: model, row: row, length: sequence.count, maximum: config.maxPositionEmbeddings)
            }
            guard sequence.count == first.count else {
                throw .raggedBatch(model: model, row: row, length: sequence.count, expected: first.count)
            }
            if let position = sequence.firstIndex(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
                throw .tokenOutOfRange(model: model, row: row, position: position, id: sequence[position], vocabularySize: config.vocabSize)
            }
        }
    }

    /// token_embedding[id] + position_embedding[position] for every token.
    func embed(_ ids: [[Int32]]) -> Tensor {
        let width = config.hiddenSize
        let length = ids[0].count
        let output = Tensor(uninitializedShape: [ids.count, length, width])
        for (row, sequence) in ids.enumerated() {
            for (position, id) in sequence.enumerated() {
                let target = output.pointer + (row * length + position) * width
                let token = token_embedding.pointer + Int(id) * width
                let place = position_embedding.pointer + position * width
                for channel in 0..<width { target[channel] = token[channel] + place[channel] }
            }
        }
        return output
    }
}

/// One pre-LayerNorm transformer layer: x + attn(ln1(x)), then x + mlp(ln2(x)).
final class CLIPEncoderLayer: Sendable {
    let layer_norm1: LayerNorm
    let q_proj: Linear
    let k_proj: Linear
    let v_proj: Linear
    let out_proj: Linear
    let layer_norm2: LayerNorm
    let fc1: Linear
    let fc2: Linear
    let heads: Int
    let activation: CLIPTextConfig.Activation

    init(_ loader: ParameterLoader, config: CLIPTextConfig) {
        let width = config.hiddenSize
        let attention = loader.scoped("self_attn")
        let mlp = loader.scoped("mlp")
        layer_norm1 = LayerNorm(loader.scoped("layer_norm1"), features: width, eps: config.layerNormEps)
        q_proj = Linear(attention.scoped("q_proj"), in: width, out: width)
        k_proj = Linear(attention.scoped("k_proj"), in: width, out: width)
        v_proj = Linear(attention.scoped("v_proj"), in: width, out: width)
        out_proj = Linear(attention.scoped("out_proj"), in: width, out: width)
        layer_norm2 = LayerNorm(loader.scoped("layer_norm2"), features: width, eps: config.layerNormEps)
        fc1 = Linear(mlp.scoped("fc1"), in: width, out: config.intermediateSize)
        fc2 = Linear(mlp.scoped("fc2"), in: config.intermediateSize, out: width)
        heads = config.numAttentionHeads
        activation = config.hiddenAct
    }

    /// x [batch, length, width] -> same shape.
    func callAsFunction(_ x: Tensor) -> Tensor {
        let normed = layer_norm1(x)
        let attended = attention(query: q_proj(normed), key: k_proj(normed), value: v_proj(normed), heads: heads, causal: true)
        let afterAttention = add(x, out_proj(attended))
        let expanded = fc1(layer_norm2(afterAttention))
        let activated = switch activation {
        case .quickGELU: quickGELU(expanded)
        case .gelu: gelu(expanded)
        }
        return add(afterAttention, fc2(activated))
    }
}
