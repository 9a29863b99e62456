/// The decoder part of diffusers' `AutoencoderTiny` configuration (TAESD's config.json). Keys that only
/// shape the encoder are not read; values the decoder cannot run are refused by name.
public struct AutoencoderTinyConfig: Decodable, Equatable, Sendable {
    public let outChannels: Int
    public let latentChannels: Int
    public let decoderBlockOutChannels: [Int]
    public let numDecoderBlocks: [Int]
    /// The pipeline divides latents by this before decoding (1 for TAESD, which reads SD's scaled latents).
    public let scalingFactor: Float

    enum CodingKeys: String, CodingKey {
        case outChannels = "out_channels", latentChannels = "latent_channels"
        case decoderBlockOutChannels = "decoder_block_out_channels", numDecoderBlocks = "num_decoder_blocks"
        case scalingFactor = "scaling_factor", actFn = "act_fn", upsampleFn = "upsample_fn"
        case upsamplingScalingFactor = "upsampling_scaling_factor", shiftFactor = "shift_factor"
    }

    /// Missing keys take diffusers' defaults (TAESD for SD 1.x/2.x).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        outChannels = try container.decodeIfPresent(Int.self, forKey: .outChannels) ?? 3
        latentChannels = try container.decodeIfPresent(Int.self, forKey: .latentChannels) ?? 4
        decoderBlockOutChannels = try container.decodeIfPresent([Int].self, forKey: .decoderBlockOutChannels) ?? [64, 64, 64, 64]
        numDecoderBlocks = try container.decodeIfPresent([Int].self, forKey: .numDecoderBlocks) ?? [3, 3, 3, 1]
        scalingFactor = try container.decodeIfPresent(Float.self, forKey: .scalingFactor) ?? 1
        let require = ModelConfigFile.require
        let activation = try container.decodeIfPresent(String.self, forKey: .actFn) ?? "relu"
        try require(activation == "relu", "act_fn \"\(activation)\" is not supported (only relu)")
        let upsample = try container.decodeIfPresent(String.self, forKey: .upsampleFn) ?? "nearest"
        try require(upsample == "nearest", "upsample_fn \"\(upsample)\" is not supported (only nearest)")
        let factor = try container.decodeIfPresent(Int.self, forKey: .upsamplingScalingFactor) ?? 2
        try require(factor == 2, "upsampling_scaling_factor \(factor) is not supported (only 2)")
        let shift = try container.decodeIfPresent(Float.self, forKey: .shiftFactor) ?? 0
        try require(shift == 0, "shift_factor \(shift) is not supported (only 0)")
        for (key, value) in [("out_channels", outChannels), ("latent_channels", latentChannels)] {
            try require(value > 0 && value <= 1 << 16, "\(key) \(value) is out of range")
        }
        try require(!decoderBlockOutChannels.isEmpty && decoderBlockOutChannels.count <= 8
                        && numDecoderBlocks.count == decoderBlockOutChannels.count,
                    "decoder_block_out_channels and num_decoder_blocks must list the same 1 to 8 blocks")
        // diffusers' DecoderTiny keeps one width: each block's last conv feeds the next block unchanged.
        try require(decoderBlockOutChannels.allSatisfy { $0 == decoderBlockOutChannels[0] && $0 > 0 && $0 <= 1 << 16 },
                    "decoder_block_out_channels \(decoderBlockOutChannels) must all be the same positive width")
        try require(numDecoderBlocks.allSatisfy { $0 >= 0 && $0 <= 64 }, "num_decoder_blocks \(numDecoderBlocks) is out of range")
        try require(scalingFactor.isFinite && scalingFactor > 0, "scaling_factor \(scalingFactor) must be positive")
    }

    /// Reads config.json of an AutoencoderTiny folder.
    public init(contentsOf path: String) throws(ModelConfigError) {
        self = try ModelConfigFile.load(AutoencoderTinyConfig.self, path: path)
    }

    /// Pixels per latent cell: one 2x upsampling between consecutive blocks.
    public var scaleFactor: Int { 1 << (decoderBlockOutChannels.count - 1) }
}
