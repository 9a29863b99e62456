/// The subset of diffusers' `AutoencoderKL` configuration (vae/config.json) that shapes the network.
/// Only the Stable Diffusion block types are supported; others are refused by name.
public struct AutoencoderKLConfig: Codable, Equatable, Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let latentChannels: Int
    public let blockOutChannels: [Int]
    public let layersPerBlock: Int
    public let normNumGroups: Int
    /// Latents are multiplied by this after encoding; `AutoencoderKL.decode` expects them divided by it again.
    public let scalingFactor: Float
    public let downBlockTypes: [String]
    public let upBlockTypes: [String]
    public let midBlockAddAttention: Bool
    public let useQuantConv: Bool
    public let usePostQuantConv: Bool
    /// The image size the VAE was trained at (`sample_size`): the tile size of tiled decoding.
    public let sampleSize: Int

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels", latentChannels = "latent_channels"
        case blockOutChannels = "block_out_channels", layersPerBlock = "layers_per_block"
        case normNumGroups = "norm_num_groups", scalingFactor = "scaling_factor"
        case downBlockTypes = "down_block_types", upBlockTypes = "up_block_types"
        case midBlockAddAttention = "mid_block_add_attention", actFn = "act_fn"
        case useQuantConv = "use_quant_conv", usePostQuantConv = "use_post_quant_conv", sampleSize = "sample_size"
    }

    public init(inChannels: Int = 3, outChannels: Int = 3, latentChannels: Int = 4, blockOutChannels: [Int],
                layersPerBlock: Int, normNumGroups: Int = 32, scalingFactor: Float = 0.18215,
                downBlockTypes: [String]? = nil, upBlockTypes: [String]? = nil, midBlockAddAttention: Bool = true,
                useQuantConv: Bool = true, usePostQuantConv: Bool = true, sampleSize: Int = 32) throws(ModelConfigError) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.latentChannels = latentChannels
        self.blockOutChannels = blockOutChannels
        self.layersPerBlock = layersPerBlock
        self.normNumGroups = normNumGroups
        self.scalingFactor = scalingFactor
        self.downBlockTypes = downBlockTypes ?? blockOutChannels.map { _ in "DownEncoderBlock2D" }
        self.upBlockTypes = upBlockTypes ?? blockOutChannels.map { _ in "UpDecoderBlock2D" }
        self.midBlockAddAttention = midBlockAddAttention
        self.useQuantConv = useQuantConv
        self.usePostQuantConv = usePostQuantConv
        self.sampleSize = sampleSize
        try validate()
    }

    /// Missing keys take diffusers' defaults, except the block layout, which must be given.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        inChannels = try container.decodeIfPresent(Int.self, forKey: .inChannels) ?? 3
        outChannels = try container.decodeIfPresent(Int.self, forKey: .outChannels) ?? 3
        latentChannels = try container.decodeIfPresent(Int.self, forKey: .latentChannels) ?? 4
        blockOutChannels = try container.decode([Int].self, forKey: .blockOutChannels)
        layersPerBlock = try container.decode(Int.self, forKey: .layersPerBlock)
        normNumGroups = try container.decodeIfPresent(Int.self, forKey: .normNumGroups) ?? 32
        scalingFactor = try container.decodeIfPresent(Float.self, forKey: .scalingFactor) ?? 0.18215
        downBlockTypes = try container.decode([String].self, forKey: .downBlockTypes)
        upBlockTypes = try container.decode([String].self, forKey: .upBlockTypes)
        midBlockAddAttention = try container.decodeIfPresent(Bool.self, forKey: .midBlockAddAttention) ?? true
        useQuantConv = try container.decodeIfPresent(Bool.self, forKey: .useQuantConv) ?? true
        usePostQuantConv = try container.decodeIfPresent(Bool.self, forKey: .usePostQuantConv) ?? true
        // An int or [height, width]; diffusers tiles with the first. Its default is 32.
        if let size = try? container.decodeIfPresent([Int].self, forKey: .sampleSize) {
            sampleSize = size.first ?? 32
        } else {
            sampleSize = try container.decodeIfPresent(Int.self, forKey: .sampleSize) ?? 32
        }
        let activation = try container.decodeIfPresent(String.self, forKey: .actFn) ?? "silu"
        try ModelConfigFile.require(activation == "silu", "act_fn \"\(activation)\" is not supported (only silu)")
        try validate()
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(inChannels, forKey: .inChannels)
        try container.encode(outChannels, forKey: .outChannels)
        try container.encode(latentChannels, forKey: .latentChannels)
        try container.encode(blockOutChannels, forKey: .blockOutChannels)
        try container.encode(layersPerBlock, forKey: .layersPerBlock)
        try container.encode(normNumGroups, forKey: .normNumGroups)
        try container.encode(scalingFactor, forKey: .scalingFactor)
        try container.encode(downBlockTypes, forKey: .downBlockTypes)
        try container.encode(upBlockTypes, forKey: .upBlockTypes)
        try container.encode(midBlockAddAttention, forKey: .midBlockAddAttention)
        try container.encode("silu", forKey: .actFn)
        try container.encode(useQuantConv, forKey: .useQuantConv)
        try container.encode(usePostQuantConv, forKey: .usePostQuantConv)
        try container.encode(sampleSize, forKey: .sampleSize)
    }

    /// Reads vae/config.json.
    public init(contentsOf path: String) throws(ModelConfigError) {
        self = try ModelConfigFile.load(AutoencoderKLConfig.self, path: path)
    }

    private func validate() throws(ModelConfigError) {
        let require = ModelConfigFile.require
        for (key, value) in [("in_channels", inChannels), ("out_channels", outChannels), ("latent_channels", latentChannels),
                             ("layers_per_block", layersPerBlock), ("norm_num_groups", normNumGroups)] {
            try require(value > 0 && value <= 1 << 16, "\(key) \(value) is out of range")
        }
        try require(!blockOutChannels.isEmpty && blockOutChannels.count <= 8, "block_out_channels must list 1 to 8 blocks")
        for channels in blockOutChannels {
            try require(channels > 0 && channels <= 1 << 16 && channels % normNumGroups == 0,
                        "block_out_channels entry \(channels) is not a positive multiple of norm_num_groups \(normNumGroups)")
        }
        try require(downBlockTypes.count == blockOutChannels.count && upBlockTypes.count == blockOutChannels.count,
                    "down_block_types and up_block_types must have one entry per block_out_channels entry")
        if let other = downBlockTypes.first(where: { $0 != "DownEncoderBlock2D" }) {
            throw ModelConfigError("down block type \"\(other)\" is not supported (only DownEncoderBlock2D)")
        }
        if let other = upBlockTypes.first(where: { $0 != "UpDecoderBlock2D" }) {
            throw ModelConfigError("up block type \"\(other)\" is not supported (only UpDecoderBlock2D)")
        }
        try require(scalingFactor.isFinite && scalingFactor > 0, "scaling_factor \(scalingFactor) must be positive")
        try require(sampleSize >= 1 << (blockOutChannels.count - 1) && sampleSize <= 1 << 16,
                    "sample_size \(sampleSize) is out of range (at least one latent cell, at most 65536)")
    }
}
