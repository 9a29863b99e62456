/// The UNet's text conditioning of one prompt.
public struct PromptConditioning: Sendable {
    /// [1, tokens, cross_attention_dim]
    public let states: Tensor
    /// SDXL: the second encoder's projected pooled output of the prompt's first chunk, [1, projection_dim];
    /// nil for SD 1.x and 2.x.
    public let pooled: Tensor?

    public init(states: Tensor, pooled: Tensor?) {
        self.states = states
        self.pooled = pooled
    }

    /// SDXL's unconditional half for an empty negative prompt when the model says `force_zeros_for_empty_prompt`
    /// (diffusers zeroes it when no negative prompt is given, AUTOMATIC1111 when it is empty): zeros shaped like `other`.
    public static func zeros(like other: PromptConditioning) -> PromptConditioning {
        PromptConditioning(states: Tensor(zeros: other.states.shape), pooled: other.pooled.map { Tensor(zeros: $0.shape) })
    }
}

/// SDXL's two text encoders: CLIP ViT-L (text_encoder) and OpenCLIP ViT-bigG with its projection (text_encoder_2).
public struct SDXLTextEncoders: Sendable {
    public let first: CLIPTextModel
    public let second: CLIPTextModelWithProjection

    public init(first: CLIPTextModel, second: CLIPTextModelWithProjection) {
        self.first = first
        self.second = second
    }

    /// The largest clip skip both encoders allow (one layer must run).
    public var maximumClipSkip: Int { min(first.config.numHiddenLayers, second.config.numHiddenLayers) - 1 }

    /// Each prompt's conditioning, AUTOMATIC1111's way: every chunk through both encoders in one batch each
    /// (`chunks` from the first tokenizer, `chunks2` from the second: the same tokens, padded each its way),
    /// emphasis applied per encoder, the two penultimate states joined along the features (diffusers'
    /// concatenation), a prompt's chunks along the tokens, and the pooled output taken from its first chunk.
    public func encode(_ chunks: [[PromptChunk]], _ chunks2: [[PromptChunk]], clipSkip: Int = 1) throws(ModelInputError) -> [PromptConditioning] {
        let rows = chunks.flatMap { $0 }, rows2 = chunks2.flatMap { $0 }
        guard rows.count == rows2.count, chunks.map(\.count) == chunks2.map(\.count) else {
            throw .raggedBatch(model: "text encoder 2", row: 0, length: rows2.count, expected: rows.count)
        }
        let hidden = try first.penultimateHiddenStates(rows.map(\.ids), clipSkip: clipSkip)
        let (hidden2, pooled) = try second(rows2.map(\.ids), clipSkip: clipSkip)
        var row = 0
        return zip(chunks, chunks2).map { prompt, prompt2 in
            let first = row
            let parts = zip(prompt, prompt2).map { chunk, chunk2 in
                defer { row += 1 }
                let states = hidden.slice(row..<(row + 1)), states2 = hidden2.slice(row..<(row + 1))
                return concat([chunk.isUnweighted ? states : emphasized(states, tokenWeights: chunk.weights),
                               chunk2.isUnweighted ? states2 : emphasized(states2, tokenWeights: chunk2.weights)], axis: 2)
            }
            return PromptConditioning(states: parts.count == 1 ? parts[0] : concat(parts, axis: 1), pooled: pooled.slice(first..<(first + 1)))
        }
    }
}
