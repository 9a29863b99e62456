/// One window of the text encoder: start token, 75 prompt tokens (end tokens after the text), end
/// token, and each token's attention weight (1 for the special tokens).
public struct PromptChunk: Equatable, Sendable {
    public var ids: [Int32]
    public var weights: [Float]

    public init(ids: [Int32], weights: [Float]) {
        self.ids = ids
        self.weights = weights
    }

    /// Whether every weight is 1, so the encoder output is used as it comes.
    public var isUnweighted: Bool { weights.allSatisfy { $0 == 1 } }
}

extension CLIPTokenizer {
    /// AUTOMATIC1111's `comma_padding_backtrack` default: a chunk that fills up within this many
    /// tokens after a comma ends at the comma, and the words after it move to the next chunk.
    public static let commaBacktrack = 20

    /// A prompt in AUTOMATIC1111's syntax as chunks of `maxLength` tokens, the way its
    /// `tokenize_line` makes them: the weighted runs of `PromptParser.parseAttention` are tokenized
    /// one by one (without truncation) and laid out in windows of `maxLength - 2` tokens; `BREAK`
    /// starts a new window. A prompt without brackets, `BREAK` or more than `maxLength - 2` tokens
    /// gives exactly `encode(prompt)` with every weight 1.
    public func chunks(_ prompt: String) throws(PromptError) -> [PromptChunk] {
        let segments = try PromptParser.parseAttention(prompt)
        let chunkLength = maxLength - 2
        var chunks: [PromptChunk] = []
        var tokens: [Int32] = []
        var weights: [Double] = []
        var lastComma = -1

        func nextChunk() {
            let padding = chunkLength - tokens.count
            if padding > 0 {
                tokens += Array(repeating: endID, count: padding)
                weights += Array(repeating: 1, count: padding)
            }
            var ids = [startID] + tokens + [endID]
            // SD 2.x tokenizers pad with another token: everything after the first end token becomes padding.
            if padID != endID, let end = ids.firstIndex(of: endID) {
                for index in (end + 1)..<ids.count { ids[index] = padID }
            }
            chunks.append(PromptChunk(ids: ids, weights: [1] + weights.map(Float.init) + [1]))
            tokens = []
            weights = []
            lastComma = -1
        }

        for segment in segments {
            if segment.isBreak {
                nextChunk()
                continue
            }
            for token in textTokens(segment.text) {
                if token == commaID {
                    lastComma = tokens.count
                } else if tokens.count == chunkLength, lastComma != -1, tokens.count - lastComma <= Self.commaBacktrack {
                    let moved = (tokens[(lastComma + 1)...], weights[(lastComma + 1)...])
                    tokens.removeSubrange((lastComma + 1)...)
                    weights.removeSubrange((lastComma + 1)...)
                    nextChunk()
                    tokens = Array(moved.0)
                    weights = Array(moved.1)
                }
                if tokens.count == chunkLength { nextChunk() }
                tokens.append(token)
                weights.append(segment.weight)
            }
        }
        if !tokens.isEmpty || chunks.isEmpty { nextChunk() }
        return chunks
    }
}
