import Foundation

/// The decoder of diffusers' `AutoencoderTiny` (TAESD, madebyollin's tiny autoencoder): a plain stack of
/// 3x3 convolutions, ReLU residual blocks and nearest 2x upsamplings, a fraction of the full VAE's work.
/// Its pictures are close to the VAE's but softer; the pipeline uses it for `--taesd` and previews.
///
/// Checkpoint names follow diffusers' `decoder.layers.<i>` Sequential: conv, ReLU, then per block
/// `AutoencoderTinyBlock`s, an Upsample (no weights) and a conv (with a bias only in the last block).
/// The encoder's tensors are not loaded.
public final class AutoencoderTiny: Sendable {
    public let config: AutoencoderTinyConfig
    let decoder: TinyDecoder

    public init(config: AutoencoderTinyConfig, weights: any TensorSource) throws(ParameterMismatch) {
        self.config = config
        let loader = ParameterLoader(source: weights, component: "TAESD")
        decoder = TinyDecoder(loader.scoped("decoder"), config: config)
        try loader.finish(ignoring: { $0.hasPrefix("encoder.") })
    }

    /// Loads `config.json` and `diffusion_pytorch_model.safetensors` of a diffusers AutoencoderTiny folder.
    public convenience init(folder: String) throws {
        let config = try AutoencoderTinyConfig(contentsOf: (folder as NSString).appendingPathComponent("config.json"))
        let weights = try SafeTensorsFile(path: (folder as NSString).appendingPathComponent("diffusion_pytorch_model.safetensors"))
        try self.init(config: config, weights: weights)
    }

    /// Latents [N, latent_channels, h, w] (divided by the scaling factor) -> image [N, out_channels, h * scale, w * scale]
    /// in about [-1, 1].
    public func decode(_ latents: Tensor) throws(ModelInputError) -> Tensor {
        guard latents.rank == 4, latents.shape[0] > 0, latents.shape[1] == config.latentChannels,
              latents.shape[2] > 0, latents.shape[3] > 0 else {
            throw .shape(model: "TAESD", input: "latents", expected: "[N, \(config.latentChannels), H, W]", found: latents.shape)
        }
        return decoder(latents)
    }
}

/// diffusers `AutoencoderTinyBlock` with equal widths: ReLU(conv(ReLU(conv(ReLU(conv(x))))) + x).
struct TinyBlock {
    let conv: [Conv2d]

    init(_ loader: ParameterLoader, channels: Int) {
        // Sequential indices 0, 2, 4: the ReLUs between them hold no weights.
        conv = [0, 2, 4].map { Conv2d(loader.scoped("conv.\($0)"), in: channels, out: channels, kernel: 3, padding: 1) }
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let hidden = relu(conv[1](relu(conv[0](x))))
        return relu(conv[2](hidden, residual: x))
    }
}

/// diffusers `DecoderTiny`: tanh clamp of the latents to (-3, 3), the layers, then [0, 1] to [-1, 1].
final class TinyDecoder: Sendable {
    struct Stage {
        let blocks: [TinyBlock]
        /// The conv after the stage's upsampling (none in the last stage), or the output conv.
        let conv: Conv2d
        let upsampled: Bool
    }

    let conv_in: Conv2d
    let stages: [Stage]

    init(_ loader: ParameterLoader, config: AutoencoderTinyConfig) {
        let width = config.decoderBlockOutChannels[0]
        let layers = loader.scoped("layers")
        conv_in = Conv2d(layers.scoped("0"), in: config.latentChannels, out: width, kernel: 3, padding: 1)
        // Sequential index of the next layer: 0 is conv_in, 1 its ReLU.
        var index = 2
        var stages: [Stage] = []
        for (stage, count) in config.numDecoderBlocks.enumerated() {
            let isLast = stage == config.numDecoderBlocks.count - 1
            let blocks = (0..<count).map { offset in TinyBlock(layers.scoped("\(index + offset)"), channels: width) }
            index += count + (isLast ? 0 : 1)  // the Upsample has an index but no weights
            let conv = Conv2d(layers.scoped("\(index)"), in: width, out: isLast ? config.outChannels : width, kernel: 3, padding: 1,
                              bias: isLast)
            index += 1
            stages.append(Stage(blocks: blocks, conv: conv, upsampled: !isLast))
        }
        self.stages = stages
    }

    func callAsFunction(_ latents: Tensor) -> Tensor {
        var hidden = relu(conv_in(tanhBounded(latents, magnitude: 3)))
        for stage in stages {
            for block in stage.blocks { hidden = block(hidden) }
            hidden = stage.conv(hidden, upsampled: stage.upsampled)
        }
        return affine(hidden, scale: 2, offset: -1)
    }
}
