/// AUTOMATIC1111's prompt emphasis ("Original") on text encoder output `hidden` [N, L, C]: every
/// token's hidden state times its weight (`weights` [L], the same for each of the N rows), then the
/// whole tensor rescaled so that its mean is the mean it had before.
public func emphasized(_ hidden: Tensor, tokenWeights weights: [Float]) -> Tensor {
    OpProfile.record("emphasis") {
        precondition(hidden.rank == 3 && hidden.shape[1] == weights.count,
                     "emphasis: \(weights.count) weights for hidden states \(hidden.shape)")
        let (rows, length, width) = (hidden.shape[0], hidden.shape[1], hidden.shape[2])
        let result = Tensor(uninitializedShape: hidden.shape)
        let source = hidden.pointer, target = result.pointer
        var originalSum = 0.0, weightedSum = 0.0
        for row in 0..<rows {
            for token in 0..<length {
                let offset = (row * length + token) * width
                let weight = weights[token]
                for channel in 0..<width {
                    let value = source[offset + channel]
                    let weighted = value * weight
                    target[offset + channel] = weighted
                    originalSum += Double(value)
                    weightedSum += Double(weighted)
                }
            }
        }
        let count = Double(max(hidden.count, 1))
        // torch divides the two float32 means.
        let factor = Float(originalSum / count) / Float(weightedSum / count)
        for index in 0..<result.count { target[index] *= factor }
        return result
    }
}
