extension CLIPTextModel {
    /// The conditioning of each prompt, AUTOMATIC1111's way: every chunk of every prompt goes through
    /// the encoder in one batch, a weighted chunk gets `emphasized`, and a prompt's chunks are
    /// joined along the token axis: [1, chunks * length, hidden_size] per prompt.
    public func encode(_ prompts: [[PromptChunk]], clipSkip: Int = 1) throws(ModelInputError) -> [Tensor] {
        let rows = prompts.flatMap { $0 }
        let hidden = try self(rows.map(\.ids), clipSkip: clipSkip)
        var row = 0
        return prompts.map { chunks in
            let parts = chunks.map { chunk in
                defer { row += 1 }
                let states = hidden.slice(row..<(row + 1))
                return chunk.isUnweighted ? states : emphasized(states, tokenWeights: chunk.weights)
            }
            return parts.count == 1 ? parts[0] : concat(parts, axis: 1)
        }
    }
}
