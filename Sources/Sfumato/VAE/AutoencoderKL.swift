import Foundation

/// diffusers `AutoencoderKL` with DownEncoderBlock2D / UpDecoderBlock2D blocks (the Stable Diffusion VAE).
///
/// `decode` takes latents already divided by `config.scalingFactor`, exactly like
/// diffusers' `vae.decode`; the pipeline does the division.
public final class AutoencoderKL: Sendable {
    public let config: AutoencoderKLConfig
    let encoder: VAEEncoder?
    let decoder: VAEDecoder
    let quant_conv: Conv2d?
    let post_quant_conv: Conv2d?

    /// The ResnetBlock2D and attention epsilon diffusers hard-codes for the VAE.
    static let eps: Float = 1e-6

    /// Loads the weights from `weights` (names as in diffusion_pytorch_model.safetensors).
    /// With `loadEncoder: false` (text-to-image) the encoder tensors are skipped and `encode` throws.
    public init(config: AutoencoderKLConfig, weights: any TensorSource, loadEncoder: Bool = true) throws(ParameterMismatch) {
        self.config = config
        let loader = ParameterLoader(source: weights, component: "VAE")
        let moments = 2 * config.latentChannels
        encoder = loadEncoder ? VAEEncoder(loader.scoped("encoder"), config: config) : nil
        quant_conv = loadEncoder && config.useQuantConv
            ? Conv2d(loader.scoped("quant_conv"), in: moments, out: moments, kernel: 1) : nil
        decoder = VAEDecoder(loader.scoped("decoder"), config: config)
        post_quant_conv = config.usePostQuantConv
            ? Conv2d(loader.scoped("post_quant_conv"), in: config.latentChannels, out: config.latentChannels, kernel: 1) : nil
        try loader.finish(ignoring: { !loadEncoder && ($0.hasPrefix("encoder.") || $0.hasPrefix("quant_conv.")) })
    }

    /// Latents [N, latent_channels, h, w] (already divided by the scaling factor) -> image [N, out_channels, 8h, 8w]
    /// (for four blocks), values around [-1, 1].
    public func decode(_ latents: Tensor) throws(ModelInputError) -> Tensor {
        guard latents.rank == 4, latents.shape[0] > 0, latents.shape[1] == config.latentChannels,
              latents.shape[2] > 0, latents.shape[3] > 0 else {
            throw .shape(model: "VAE", input: "latents", expected: "[N, \(config.latentChannels), H, W]", found: latents.shape)
        }
        return decoder(post_quant_conv.map { $0(latents) } ?? latents)
    }

    /// Image [N, in_channels, H, W] in [-1, 1], H and W multiples of 2^(blocks - 1)
    /// -> the diagonal Gaussian over latents (not yet multiplied by the scaling factor).
    public func encode(_ image: Tensor) throws(ModelInputError) -> LatentDistribution {
        guard let encoder else { throw .componentNotLoaded(model: "VAE", component: "encoder") }
        let multiple = 1 << (config.blockOutChannels.count - 1)
        guard image.rank == 4, image.shape[0] > 0, image.shape[1] == config.inChannels,
              image.shape[2] > 0, image.shape[3] > 0, image.shape[2] % multiple == 0, image.shape[3] % multiple == 0 else {
            throw .shape(model: "VAE", input: "image", expected: "[N, \(config.inChannels), H, W] with H, W multiples of \(multiple)",
                         found: image.shape)
        }
        let hidden = encoder(image)
        return LatentDistribution(moments: quant_conv.map { $0(hidden) } ?? hidden)
    }
}

/// diffusers `DiagonalGaussianDistribution`: the encoder's mean and standard deviation per latent element.
public struct LatentDistribution: Sendable {
    public let mean: Tensor
    public let standardDeviation: Tensor

    /// moments [N, 2L, h, w]: the first L channels are the mean, the rest the log-variance.
    init(moments: Tensor) {
        let (batch, channels) = (moments.shape[0], moments.shape[1] / 2)
        let plane = moments.shape[2] * moments.shape[3]
        let shape = [batch, channels, moments.shape[2], moments.shape[3]]
        mean = Tensor(uninitializedShape: shape)
        standardDeviation = Tensor(uninitializedShape: shape)
        let half = channels * plane
        for item in 0..<batch {
            let source = moments.pointer + item * 2 * half
            mean.pointer.advanced(by: item * half).update(from: source, count: half)
            let deviation = standardDeviation.pointer + item * half
            for index in 0..<half {
                // diffusers clamps the log-variance to [-30, 20] before exp(0.5 * logvar).
                let logVariance = Swift.min(Swift.max(source[half + index], -30), 20)
                deviation[index] = exp(0.5 * logVariance)
            }
        }
    }

    /// mean + std * noise, with noise drawn like diffusers' `latent_dist.sample(generator)`.
    public func sample(using random: inout some RandomSource) -> Tensor {
        let noise = random.normal(shape: mean.shape)
        let result = Tensor(uninitializedShape: mean.shape)
        for index in 0..<mean.count {
            result[flat: index] = mean[flat: index] + standardDeviation[flat: index] * noise[flat: index]
        }
        return result
    }
}

/// Image -> latent moments: conv_in, DownEncoderBlock2D blocks, mid block, GroupNorm + SiLU, conv_out.
final class VAEEncoder: Sendable {
    struct DownBlock {
        let resnets: [ResnetBlock2D]
        let downsampler: Conv2d?
    }

    let conv_in: Conv2d
    let down_blocks: [DownBlock]
    let mid_block: VAEMidBlock
    let conv_norm_out: GroupNorm
    let conv_out: Conv2d

    init(_ loader: ParameterLoader, config: AutoencoderKLConfig) {
        let channels = config.blockOutChannels
        let groups = config.normNumGroups
        let eps = AutoencoderKL.eps
        conv_in = Conv2d(loader.scoped("conv_in"), in: config.inChannels, out: channels[0], kernel: 3, padding: 1)
        down_blocks = channels.indices.map { index in
            let block = loader.scoped("down_blocks.\(index)")
            let input = index == 0 ? channels[0] : channels[index - 1]
            let output = channels[index]
            let resnets = (0..<config.layersPerBlock).map {
                ResnetBlock2D(block.scoped("resnets.\($0)"), inChannels: $0 == 0 ? input : output, outChannels: output,
                              tembChannels: nil, groups: groups, eps: eps)
            }
            // Downsample2D with padding 0: the input is padded on the right and bottom only, then a stride-2 conv.
            let downsampler = index == channels.count - 1 ? nil
                : Conv2d(block.scoped("downsamplers.0.conv"), in: output, out: output, kernel: 3, stride: 2)
            return DownBlock(resnets: resnets, downsampler: downsampler)
        }
        let last = channels[channels.count - 1]
        mid_block = VAEMidBlock(loader.scoped("mid_block"), channels: last, groups: groups, eps: eps, addAttention: config.midBlockAddAttention)
        conv_norm_out = GroupNorm(loader.scoped("conv_norm_out"), channels: last, groups: groups, eps: eps)
        conv_out = Conv2d(loader.scoped("conv_out"), in: last, out: 2 * config.latentChannels, kernel: 3, padding: 1)
    }

    func callAsFunction(_ image: Tensor) -> Tensor {
        var hidden = conv_in(image)
        for block in down_blocks {
            for resnet in block.resnets { hidden = resnet(hidden, temb: nil) }
            if let downsampler = block.downsampler { hidden = downsampler(padRightAndBottom(hidden)) }
        }
        hidden = mid_block(hidden)
        return conv_out(hidden, normalizedBy: conv_norm_out, silu: true)
    }

    /// [N, C, H, W] -> [N, C, H + 1, W + 1] with a zero last row and column.
    private func padRightAndBottom(_ x: Tensor) -> Tensor {
        let (planes, height, width) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        let output = Tensor(uninitializedShape: [x.shape[0], x.shape[1], height + 1, width + 1])
        for plane in 0..<planes {
            let source = x.pointer + plane * height * width
            let target = output.pointer + plane * (height + 1) * (width + 1)
            for row in 0..<height {
                (target + row * (width + 1)).update(from: source + row * width, count: width)
                target[row * (width + 1) + width] = 0
            }
            (target + height * (width + 1)).initialize(repeating: 0, count: width + 1)
        }
        return output
    }
}

/// Latents -> image: conv_in, mid block, UpDecoderBlock2D blocks (widest first), GroupNorm + SiLU, conv_out.
final class VAEDecoder: Sendable {
    struct UpBlock {
        let resnets: [ResnetBlock2D]
        let upsampler: Conv2d?
    }

    let conv_in: Conv2d
    let mid_block: VAEMidBlock
    let up_blocks: [UpBlock]
    let conv_norm_out: GroupNorm
    let conv_out: Conv2d

    init(_ loader: ParameterLoader, config: AutoencoderKLConfig) {
        let channels = Array(config.blockOutChannels.reversed())
        let groups = config.normNumGroups
        let eps = AutoencoderKL.eps
        conv_in = Conv2d(loader.scoped("conv_in"), in: config.latentChannels, out: channels[0], kernel: 3, padding: 1)
        mid_block = VAEMidBlock(loader.scoped("mid_block"), channels: channels[0], groups: groups, eps: eps, addAttention: config.midBlockAddAttention)
        up_blocks = channels.indices.map { index in
            let block = loader.scoped("up_blocks.\(index)")
            let input = index == 0 ? channels[0] : channels[index - 1]
            let output = channels[index]
            let resnets = (0...config.layersPerBlock).map {
                ResnetBlock2D(block.scoped("resnets.\($0)"), inChannels: $0 == 0 ? input : output, outChannels: output,
                              tembChannels: nil, groups: groups, eps: eps)
            }
            let upsampler = index == channels.count - 1 ? nil
                : Conv2d(block.scoped("upsamplers.0.conv"), in: output, out: output, kernel: 3, padding: 1)
            return UpBlock(resnets: resnets, upsampler: upsampler)
        }
        let last = channels[channels.count - 1]
        conv_norm_out = GroupNorm(loader.scoped("conv_norm_out"), channels: last, groups: groups, eps: eps)
        conv_out = Conv2d(loader.scoped("conv_out"), in: last, out: config.outChannels, kernel: 3, padding: 1)
    }

    func callAsFunction(_ latents: Tensor) -> Tensor {
        var hidden = mid_block(conv_in(latents))
        for block in up_blocks {
            for resnet in block.resnets { hidden = resnet(hidden, temb: nil) }
            if let upsampler = block.upsampler { hidden = upsampler(hidden, upsampled: true) }
        }
        return conv_out(hidden, normalizedBy: conv_norm_out, silu: true)
    }
}
