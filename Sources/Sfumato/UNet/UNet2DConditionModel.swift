/// The SD 1.x / 2.x / XL denoiser, diffusers `UNet2DConditionModel` (0.42) in float32.
///
/// Properties are named after the checkpoint keys (`down_blocks.1.attentions.0...` is
/// `down_blocks[1].attentions[0]...`), so a key in an error message leads to the code that reads it.
public final class UNet2DConditionModel: Sendable {
    public let config: UNet2DConditionConfig
    let conv_in: Conv2d
    let time_embedding: TimestepEmbedding
    /// SDXL ("text_time"): projects the pooled text embedding and the size features into the time embedding.
    let add_embedding: TimestepEmbedding?
    let down_blocks: [UNetDownBlock]
    let mid_block: UNetMidBlock2DCrossAttn
    let up_blocks: [UNetUpBlock]
    let conv_norm_out: GroupNorm
    let conv_out: Conv2d

    /// Builds the network from `weights` (a diffusers `unet/diffusion_pytorch_model.safetensors`
    /// or a mapped single-file checkpoint); every missing, mis-shaped or unexpected tensor is
    /// reported together in one `ParameterMismatch`.
    public convenience init(config: UNet2DConditionConfig, weights: any TensorSource) throws(ParameterMismatch) {
        let loader = ParameterLoader(source: weights, component: "unet")
        self.init(loader, config: config)
        try loader.finish()
    }

    /// Reads the parameters through `loader` (unscoped: names start at "conv_in", "down_blocks", ...).
    init(_ loader: ParameterLoader, config: UNet2DConditionConfig) {
        self.config = config
        let channels = config.blockOutChannels
        let inPadding = (config.convInKernel - 1) / 2
        conv_in = Conv2d(loader.scoped("conv_in"), in: config.inChannels, out: channels[0],
                         kernel: config.convInKernel, padding: inPadding)
        time_embedding = TimestepEmbedding(loader.scoped("time_embedding"), inChannels: config.timestepInputDim,
                                           timeEmbedDim: config.timeEmbeddingDim, condProjDim: config.timeCondProjDim)
        add_embedding = config.projectionClassEmbeddingsInputDim.map {
            TimestepEmbedding(loader.scoped("add_embedding"), inChannels: $0, timeEmbedDim: config.timeEmbeddingDim, condProjDim: nil)
        }
        down_blocks = channels.indices.map { UNetDownBlock(loader.scoped("down_blocks.\($0)"), config: config, index: $0) }
        mid_block = UNetMidBlock2DCrossAttn(loader.scoped("mid_block"), config: config)
        up_blocks = channels.indices.map { UNetUpBlock(loader.scoped("up_blocks.\($0)"), config: config, index: $0) }
        conv_norm_out = GroupNorm(loader.scoped("conv_norm_out"), channels: channels[0], groups: config.normNumGroups,
                                  eps: Float(config.normEps))
        conv_out = Conv2d(loader.scoped("conv_out"), in: channels[0], out: config.outChannels,
                          kernel: config.convOutKernel, padding: (config.convOutKernel - 1) / 2)
    }

    /// Predicts the noise for `sample` [N, inChannels, H, W] at `timestep` (the same for all N items,
    /// e.g. the unconditional and conditional halves of classifier-free guidance), conditioned on
    /// `encoderHiddenStates` [N, L, crossAttentionDim]. Returns [N, outChannels, H, W].
    ///
    /// The timestep is rounded to float32 as diffusers does, whether the scheduler's value is
    /// integral (DDIM, PNDM) or fractional (Euler). H and W must be multiples of `config.spatialFactor`.
    /// `timestepCondition` [N, time_cond_proj_dim] (LCM UNets only, diffusers' `timestep_cond`): the
    /// guidance-scale embedding; without it such a UNet runs as diffusers does without one.
    /// `addedConditions` (SDXL UNets, which need it): the pooled text embedding and size conditioning per item.
    public func callAsFunction(_ sample: Tensor, timestep: Double, encoderHiddenStates: Tensor,
                               timestepCondition: Tensor? = nil, addedConditions: UNetAddedConditions? = nil) throws(UNetError) -> Tensor {
        try validate(sample, timestep: timestep, encoderHiddenStates: encoderHiddenStates)
        try validate(addedConditions, batch: sample.shape[0])
        if let timestepCondition {
            guard let width = config.timeCondProjDim else {
                throw .invalidInput("a timestep condition was given, but this UNet has no time_cond_proj_dim")
            }
            guard timestepCondition.shape == [sample.shape[0], width] else {
                throw .invalidInput("timestep condition has shape \(timestepCondition.shape), expected [\(sample.shape[0]), \(width)]")
            }
        }
        let features = sinusoidalTimestepEmbedding(Array(repeating: Float(timestep), count: sample.shape[0]),
                                                   dimension: config.timestepInputDim, flipSinToCos: config.flipSinToCos,
                                                   downscaleFreqShift: config.freqShift)
        var temb = time_embedding(features, condition: timestepCondition)
        if let add_embedding, let addedConditions, let width = config.additionTimeEmbedDim {
            // diffusers' add_time_proj: the timesteps' sinusoidal features of every time id, flattened per item.
            let ids = addedConditions.timeIds
            let timeFeatures = sinusoidalTimestepEmbedding(ids.toArray(), dimension: width, flipSinToCos: config.flipSinToCos,
                                                           downscaleFreqShift: config.freqShift)
            let input = concat([addedConditions.textEmbeds, timeFeatures.reshaped([ids.shape[0], ids.shape[1] * width])], axis: 1)
            temb = add(temb, add_embedding(input, condition: nil))
        }
        var hidden = conv_in(sample)
        var skips = [hidden]
        for block in down_blocks {
            hidden = block(hidden, temb: temb, encoderHiddenStates: encoderHiddenStates, skips: &skips)
        }
        hidden = mid_block(hidden, temb: temb, encoderHiddenStates: encoderHiddenStates)
        for block in up_blocks {
            hidden = block(hidden, skips: &skips, temb: temb, encoderHiddenStates: encoderHiddenStates)
        }
        return conv_out(hidden, normalizedBy: conv_norm_out, silu: true)
    }

    private func validate(_ conditions: UNetAddedConditions?, batch: Int) throws(UNetError) {
        guard let inputWidth = config.projectionClassEmbeddingsInputDim, let timeWidth = config.additionTimeEmbedDim else {
            if conditions != nil { throw .invalidInput("added conditions (text embeds, time ids) were given, but this UNet has no addition_embed_type") }
            return
        }
        guard let conditions else {
            throw .invalidInput("this UNet (addition_embed_type \"text_time\", SDXL) needs the pooled text embeds and the size time ids")
        }
        let (embeds, ids) = (conditions.textEmbeds, conditions.timeIds)
        guard embeds.rank == 2, ids.rank == 2, embeds.shape[0] == batch, ids.shape[0] == batch,
              embeds.shape[1] + ids.shape[1] * timeWidth == inputWidth else {
            throw .invalidInput("text embeds \(embeds.shape) and time ids \(ids.shape) do not fit: expected [\(batch), P] and [\(batch), K] "
                                + "with P + K x \(timeWidth) = projection_class_embeddings_input_dim \(inputWidth)")
        }
        guard ids.toArray().allSatisfy(\.isFinite) else { throw .invalidInput("time ids must be finite") }
    }

    private func validate(_ sample: Tensor, timestep: Double, encoderHiddenStates: Tensor) throws(UNetError) {
        guard sample.rank == 4, sample.shape[0] > 0, sample.shape[1] == config.inChannels else {
            throw .invalidInput("sample has shape \(sample.shape), expected [N, \(config.inChannels), H, W]")
        }
        let factor = config.spatialFactor
        guard sample.shape[2] > 0, sample.shape[3] > 0, sample.shape[2] % factor == 0, sample.shape[3] % factor == 0 else {
            throw .invalidInput("sample size \(sample.shape[2])x\(sample.shape[3]) is not a positive multiple of \(factor) (the UNet's total downsampling)")
        }
        guard encoderHiddenStates.rank == 3, encoderHiddenStates.shape[0] == sample.shape[0], encoderHiddenStates.shape[1] > 0,
              encoderHiddenStates.shape[2] == config.crossAttentionDim else {
            throw .invalidInput("encoder hidden states have shape \(encoderHiddenStates.shape), expected [\(sample.shape[0]), L, \(config.crossAttentionDim)]")
        }
        guard timestep.isFinite else { throw .invalidInput("timestep \(timestep) is not finite") }
    }
}
