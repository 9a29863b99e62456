/// The UNet's down, middle and up blocks (diffusers `unet_2d_blocks`), for the SD 1.x / 2.x layout.
/// Heads per transformer come from the config's `attention_head_dim` (see `UNet2DConditionConfig`),
/// each of width channels / heads (integer division, as in diffusers).

/// `CrossAttnDownBlock2D` (a transformer after each resnet) or `DownBlock2D` (resnets only),
/// followed, except in the last block, by a stride-2 3x3 convolution.
final class UNetDownBlock: Sendable {
    let resnets: [ResnetBlock2D]
    /// Empty for DownBlock2D.
    let attentions: [Transformer2DModel]
    /// "downsamplers.0.conv"
    let downsampler: Conv2d?

    /// `loader` is scoped to "down_blocks.<index>".
    init(_ loader: ParameterLoader, config: UNet2DConditionConfig, index: Int) {
        let output = config.blockOutChannels[index]
        let input = index == 0 ? output : config.blockOutChannels[index - 1]
        let groups = config.normNumGroups
        let eps = Float(config.normEps)
        resnets = (0..<config.layersPerBlock[index]).map { layer in
            ResnetBlock2D(loader.scoped("resnets.\(layer)"), inChannels: layer == 0 ? input : output, outChannels: output,
                          tembChannels: config.timeEmbeddingDim, groups: groups, eps: eps)
        }
        if config.downBlockTypes[index] == .crossAttnDownBlock2D {
            let heads = config.numAttentionHeads[index]
            attentions = (0..<config.layersPerBlock[index]).map { layer in
                Transformer2DModel(loader.scoped("attentions.\(layer)"), channels: output, heads: heads, headDim: output / heads,
                                   layers: config.transformerLayersPerBlock[index], crossAttentionDim: config.crossAttentionDim,
                                   groups: groups, linearProjection: config.useLinearProjection)
            }
        } else {
            attentions = []
        }
        let isLast = index == config.blockOutChannels.count - 1
        downsampler = isLast ? nil
            : Conv2d(loader.scoped("downsamplers.0.conv"), in: output, out: output, kernel: 3, stride: 2, padding: 1)
    }

    /// Appends every layer's output (and the downsampled result) to `skips` for the up path.
    func callAsFunction(_ x: Tensor, temb: Tensor, encoderHiddenStates: Tensor, skips: inout [Tensor]) -> Tensor {
        var hidden = x
        for (layer, resnet) in resnets.enumerated() {
            hidden = resnet(hidden, temb: temb)
            if !attentions.isEmpty { hidden = attentions[layer](hidden, encoderHiddenStates: encoderHiddenStates) }
            skips.append(hidden)
        }
        if let downsampler {
            hidden = downsampler(hidden)
            skips.append(hidden)
        }
        return hidden
    }
}

/// `UNetMidBlock2DCrossAttn` with one layer: resnets.0 -> attentions.0 -> resnets.1.
final class UNetMidBlock2DCrossAttn: Sendable {
    let resnets: [ResnetBlock2D]
    let attentions: [Transformer2DModel]

    /// `loader` is scoped to "mid_block".
    init(_ loader: ParameterLoader, config: UNet2DConditionConfig) {
        let channels = config.blockOutChannels[config.blockOutChannels.count - 1]
        let heads = config.numAttentionHeads[config.numAttentionHeads.count - 1]
        resnets = (0..<2).map { index in
            ResnetBlock2D(loader.scoped("resnets.\(index)"), inChannels: channels, outChannels: channels,
                          tembChannels: config.timeEmbeddingDim, groups: config.normNumGroups, eps: Float(config.normEps))
        }
        attentions = [Transformer2DModel(loader.scoped("attentions.0"), channels: channels, heads: heads, headDim: channels / heads,
                                         layers: config.transformerLayersPerBlock[config.transformerLayersPerBlock.count - 1],
                                         crossAttentionDim: config.crossAttentionDim, groups: config.normNumGroups,
                                         linearProjection: config.useLinearProjection)]
    }

    func callAsFunction(_ x: Tensor, temb: Tensor, encoderHiddenStates: Tensor) -> Tensor {
        let hidden = attentions[0](resnets[0](x, temb: temb), encoderHiddenStates: encoderHiddenStates)
        return resnets[1](hidden, temb: temb)
    }
}

/// `CrossAttnUpBlock2D` or `UpBlock2D`: each resnet takes the running tensor concatenated with the
/// latest skip tensor; all but the last block end with nearest 2x upsampling and a 3x3 convolution.
final class UNetUpBlock: Sendable {
    let resnets: [ResnetBlock2D]
    /// Empty for UpBlock2D.
    let attentions: [Transformer2DModel]
    /// "upsamplers.0.conv"
    let upsampler: Conv2d?

    /// `loader` is scoped to "up_blocks.<index>"; up block i mirrors down block (count - 1 - i).
    init(_ loader: ParameterLoader, config: UNet2DConditionConfig, index: Int) {
        let mirrored = config.blockOutChannels.count - 1 - index
        let output = config.blockOutChannels[mirrored]
        let groups = config.normNumGroups
        resnets = config.upLayerChannels[index].enumerated().map { layer, channels in
            ResnetBlock2D(loader.scoped("resnets.\(layer)"), inChannels: channels.input + channels.skip, outChannels: output,
                          tembChannels: config.timeEmbeddingDim, groups: groups, eps: Float(config.normEps))
        }
        if config.upBlockTypes[index] == .crossAttnUpBlock2D {
            let heads = config.numAttentionHeads[mirrored]
            attentions = resnets.indices.map { layer in
                Transformer2DModel(loader.scoped("attentions.\(layer)"), channels: output, heads: heads, headDim: output / heads,
                                   layers: config.transformerLayersPerBlock[mirrored], crossAttentionDim: config.crossAttentionDim,
                                   groups: groups, linearProjection: config.useLinearProjection)
            }
        } else {
            attentions = []
        }
        upsampler = mirrored == 0 ? nil
            : Conv2d(loader.scoped("upsamplers.0.conv"), in: output, out: output, kernel: 3, padding: 1)
    }

    /// Pops one skip tensor per resnet, most recent first.
    func callAsFunction(_ x: Tensor, skips: inout [Tensor], temb: Tensor, encoderHiddenStates: Tensor) -> Tensor {
        var hidden = x
        for (layer, resnet) in resnets.enumerated() {
            hidden = resnet(concat([hidden, skips.removeLast()], axis: 1), temb: temb)
            if !attentions.isEmpty { hidden = attentions[layer](hidden, encoderHiddenStates: encoderHiddenStates) }
        }
        if let upsampler { hidden = upsampler(hidden, upsampled: true) }
        return hidden
    }
}
