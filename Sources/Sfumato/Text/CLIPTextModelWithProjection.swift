/// transformers' `CLIPTextModelWithProjection` (SDXL's text_encoder_2, OpenCLIP ViT-bigG): the text model,
/// and its pooled output (the final-layer-normed state of the end token) through `text_projection`.
public final class CLIPTextModelWithProjection: Sendable {
    public var config: CLIPTextConfig { text_model.config }
    let text_model: CLIPTextModel
    /// No bias: [projection_dim, hidden_size].
    let text_projection: Linear

    /// Loads "text_model.*" and "text_projection.weight" (transformers 4.x and 5.x name them alike).
    public init(config: CLIPTextConfig, weights: any TensorSource) throws(ParameterMismatch) {
        let root = ParameterLoader(source: weights, component: "text encoder 2")
        text_model = CLIPTextModel(root.scoped("text_model"), config: config)
        text_projection = Linear(root.scoped("text_projection"), in: config.hiddenSize, out: config.projectionDim, bias: false)
        try root.finish(ignoring: { $0.hasSuffix("embeddings.position_ids") })
    }

    /// SDXL's conditioning from this encoder: the output of layer L - `clipSkip` without the final layer norm
    /// (see `CLIPTextModel.penultimateHiddenStates`), [batch, length, hidden_size], and the projected pooled
    /// output of the last layer, [batch, projection_dim] (diffusers' `text_embeds`).
    public func callAsFunction(_ ids: [[Int32]], clipSkip: Int = 1) throws(ModelInputError) -> (hiddenStates: Tensor, pooled: Tensor) {
        try text_model.validate(ids)
        try text_model.validatePenultimate(clipSkip: clipSkip)
        let layers = config.numHiddenLayers
        let states = text_model.run(text_model.embed(ids), layers: 0..<(layers - clipSkip))
        let last = text_model.final_layer_norm(text_model.run(states, layers: (layers - clipSkip)..<layers))
        let pooled = selectTokens(last, positions: ids.map(pooledPosition))
        return (states, text_projection(pooled))
    }

    /// transformers' rule: the first end token, or with the legacy eos_token_id 2 the first largest id;
    /// a sequence without an end token pools its first position.
    func pooledPosition(_ sequence: [Int32]) -> Int {
        if config.eosTokenID == 2 {
            guard let largest = sequence.max() else { return 0 }
            return sequence.firstIndex(of: largest) ?? 0
        }
        return sequence.firstIndex(of: Int32(truncatingIfNeeded: config.eosTokenID)) ?? 0
    }
}
