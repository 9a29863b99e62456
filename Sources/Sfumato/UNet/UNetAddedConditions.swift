/// SDXL's added conditioning of each batch item (diffusers' `added_cond_kwargs` for "text_time").
public struct UNetAddedConditions: Sendable {
    /// [N, pooled width]: the second text encoder's projected pooled output.
    public let textEmbeds: Tensor
    /// [N, K]: the size and crop conditioning, K = 6 in SDXL: original (height, width), crop top-left (y, x),
    /// target (height, width), in pixels.
    public let timeIds: Tensor

    public init(textEmbeds: Tensor, timeIds: Tensor) {
        self.textEmbeds = textEmbeds
        self.timeIds = timeIds
    }

    /// An image drawn at `width` x `height` as SDXL's pipelines condition it by default: the original and
    /// target sizes are the output size and nothing is cropped, (h, w, 0, 0, h, w). [1, 6]
    public static func sizeConditioning(width: Int, height: Int) -> Tensor {
        Tensor(shape: [1, 6], values: [Float(height), Float(width), 0, 0, Float(height), Float(width)])
    }

    /// The items of `parts` as one batch, in order (unconditional first for guidance).
    public static func batched(_ parts: [UNetAddedConditions]) -> UNetAddedConditions {
        UNetAddedConditions(textEmbeds: concat(parts.map(\.textEmbeds), axis: 0), timeIds: concat(parts.map(\.timeIds), axis: 0))
    }
}
