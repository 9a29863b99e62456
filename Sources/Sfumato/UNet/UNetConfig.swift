import Foundation

/// Why a UNet cannot be configured or run; every case names the key or input at fault.
public enum UNetError: Error, Equatable, CustomStringConvertible {
    case unreadableConfig(path: String, reason: String)
    /// The key's value is malformed or inconsistent with the rest of the configuration.
    case invalidConfig(key: String, reason: String)
    /// A setting diffusers knows but this engine does not implement.
    case unsupportedConfig(key: String, value: String, reason: String)
    /// The tensors passed to the model do not fit its configuration.
    case invalidInput(String)

    public var description: String {
        switch self {
        case let .unreadableConfig(path, reason): "cannot read UNet config \(path): \(reason)"
        case let .invalidConfig(key, reason): "UNet config: invalid \"\(key)\": \(reason)"
        case let .unsupportedConfig(key, value, reason): "UNet config: \"\(key)\" = \(value) is not supported (\(reason))"
        case let .invalidInput(message): "UNet input: \(message)"
        }
    }
}

public enum UNetDownBlockType: String, Codable, Sendable {
    case crossAttnDownBlock2D = "CrossAttnDownBlock2D"
    case downBlock2D = "DownBlock2D"
}

/// diffusers' `addition_embed_type`: an embedding added to the timestep embedding.
public enum UNetAdditionEmbedType: String, Codable, Sendable {
    /// SDXL: the pooled text embedding and the sinusoidal features of the size and crop conditioning
    /// (`add_time_proj`), concatenated and projected by `add_embedding`.
    case textTime = "text_time"
}

public enum UNetUpBlockType: String, Codable, Sendable {
    case upBlock2D = "UpBlock2D"
    case crossAttnUpBlock2D = "CrossAttnUpBlock2D"
}

/// `unet/config.json` of a diffusers `UNet2DConditionModel`, resolved the way diffusers 0.42 resolves it
/// (per-block values expanded to lists, defaults filled in). The SD 1.x / 2.x / XL family is supported:
/// any other setting with a non-default value is refused with an error naming it.
public struct UNet2DConditionConfig: Codable, Equatable, Sendable {
    public let sampleSize: [Int]?
    public let inChannels: Int
    public let outChannels: Int
    public let flipSinToCos: Bool
    public let freqShift: Double
    public let downBlockTypes: [UNetDownBlockType]
    public let upBlockTypes: [UNetUpBlockType]
    public let blockOutChannels: [Int]
    /// Resnets per down block (the matching up block has one more).
    public let layersPerBlock: [Int]
    /// diffusers' historical misnomer: in these models this is the NUMBER of heads per block
    /// (diffusers uses it as `num_attention_heads` because `num_attention_heads` must be null).
    public let attentionHeadDim: [Int]
    public let crossAttentionDim: Int
    public let transformerLayersPerBlock: [Int]
    public let normNumGroups: Int
    public let normEps: Double
    /// SD 2.x: proj_in/proj_out are linear layers; SD 1.x: 1x1 convolutions.
    public let useLinearProjection: Bool
    /// Width of the projected time embedding (diffusers: `time_embedding_dim` or 4 x block_out_channels[0]).
    public let timeEmbeddingDim: Int
    public let convInKernel: Int
    public let convOutKernel: Int
    /// Kept for round trips only: this engine always computes attention in float32.
    public let upcastAttention: Bool
    /// LCM-distilled UNets: the width of the guidance-scale embedding added to the timestep features
    /// (through `time_embedding.cond_proj`); nil for ordinary UNets.
    public let timeCondProjDim: Int?
    /// SDXL: "text_time" (nil: no added embedding).
    public let additionEmbedType: UNetAdditionEmbedType?
    /// SDXL: the width of each size/crop value's sinusoidal features (256 in SDXL).
    public let additionTimeEmbedDim: Int?
    /// SDXL: the input width of `add_embedding`, pooled text width + time ids x additionTimeEmbedDim (2816 in SDXL).
    public let projectionClassEmbeddingsInputDim: Int?

    enum CodingKeys: String, CodingKey {
        case sampleSize = "sample_size", inChannels = "in_channels", outChannels = "out_channels"
        case flipSinToCos = "flip_sin_to_cos", freqShift = "freq_shift"
        case downBlockTypes = "down_block_types", upBlockTypes = "up_block_types"
        case blockOutChannels = "block_out_channels", layersPerBlock = "layers_per_block"
        case attentionHeadDim = "attention_head_dim", crossAttentionDim = "cross_attention_dim"
        case transformerLayersPerBlock = "transformer_layers_per_block"
        case normNumGroups = "norm_num_groups", normEps = "norm_eps"
        case useLinearProjection = "use_linear_projection", timeEmbeddingDim = "time_embedding_dim"
        case convInKernel = "conv_in_kernel", convOutKernel = "conv_out_kernel"
        case upcastAttention = "upcast_attention"
        case timeCondProjDim = "time_cond_proj_dim"
        case additionEmbedType = "addition_embed_type", additionTimeEmbedDim = "addition_time_embed_dim"
        case projectionClassEmbeddingsInputDim = "projection_class_embeddings_input_dim"
    }

    /// Heads of the transformers in each down block (and, reversed, in the up blocks).
    public var numAttentionHeads: [Int] { attentionHeadDim }
    /// Width of the sinusoidal timestep features.
    public var timestepInputDim: Int { blockOutChannels[0] }
    /// Height and width must be multiples of this (one 2x downsampler per block but the last).
    public var spatialFactor: Int { 1 << (blockOutChannels.count - 1) }

    public init(contentsOf path: String) throws(UNetError) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .unreadableConfig(path: path, reason: error.localizedDescription)
        }
        try self.init(json: data, path: path)
    }

    public init(json data: Data, path: String = "config.json") throws(UNetError) {
        do {
            self = try JSONDecoder().decode(Self.self, from: data)
        } catch let error as UNetError {
            throw error
        } catch let DecodingError.dataCorrupted(context) {
            throw .unreadableConfig(path: path, reason: context.debugDescription)
        } catch {
            throw .unreadableConfig(path: path, reason: "\(error)")
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyConfigKey.self)
        var values: [String: ConfigValue] = [:]
        for key in container.allKeys { values[key.stringValue] = try container.decode(ConfigValue.self, forKey: key) }
        try self.init(reader: ConfigReader(values: values))
    }

    private init(reader: ConfigReader) throws(UNetError) {
        if let name = reader.values["_class_name"], name != .string("UNet2DConditionModel") {
            throw .unsupportedConfig(key: "_class_name", value: name.description, reason: "only UNet2DConditionModel is implemented")
        }
        try reader.requireDefaults()

        downBlockTypes = try reader.blockTypes("down_block_types", default: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"])
        upBlockTypes = try reader.blockTypes("up_block_types", default: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"])
        blockOutChannels = try reader.intList("block_out_channels", default: [320, 640, 1280, 1280], count: nil)
        let blocks = blockOutChannels.count
        guard blocks >= 1, blocks <= 8 else { throw .invalidConfig(key: "block_out_channels", reason: "needs 1...8 blocks, has \(blocks)") }
        guard downBlockTypes.count == blocks else {
            throw .invalidConfig(key: "down_block_types", reason: "\(downBlockTypes.count) types for \(blocks) block_out_channels")
        }
        guard upBlockTypes.count == blocks else {
            throw .invalidConfig(key: "up_block_types", reason: "\(upBlockTypes.count) types for \(downBlockTypes.count) down blocks")
        }

        sampleSize = try reader.sampleSize()
        inChannels = try reader.int("in_channels", default: 4)
        outChannels = try reader.int("out_channels", default: 4)
        flipSinToCos = try reader.bool("flip_sin_to_cos", default: true)
        freqShift = try reader.number("freq_shift", default: 0)
        layersPerBlock = try reader.intList("layers_per_block", default: [2], count: blocks, range: 1...64)
        attentionHeadDim = try reader.intList("attention_head_dim", default: [8], count: blocks)
        crossAttentionDim = try reader.crossAttentionDim(blocks: blocks)
        if case let .array(elements)? = reader.values["transformer_layers_per_block"], elements.contains(where: { if case .array = $0 { true } else { false } }) {
            throw .unsupportedConfig(key: "transformer_layers_per_block", value: ConfigValue.array(elements).description, reason: "per-layer transformer depths (asymmetric UNets) are not implemented")
        }
        transformerLayersPerBlock = try reader.intList("transformer_layers_per_block", default: [1], count: blocks, range: 1...64)
        normNumGroups = try reader.int("norm_num_groups", default: 32)
        normEps = try reader.number("norm_eps", default: 1e-5)
        useLinearProjection = try reader.bool("use_linear_projection", default: false)
        convInKernel = try reader.int("conv_in_kernel", default: 3)
        convOutKernel = try reader.int("conv_out_kernel", default: 3)
        upcastAttention = try reader.bool("upcast_attention", default: false)
        timeCondProjDim = reader.values["time_cond_proj_dim", default: .null] == .null ? nil : try reader.int("time_cond_proj_dim", default: 0)
        switch reader.values["addition_embed_type", default: .null] {
        case .null:
            // diffusers reads the other two keys only for an added embedding (class embeddings are refused above).
            (additionEmbedType, additionTimeEmbedDim, projectionClassEmbeddingsInputDim) = (nil, nil, nil)
        case .string(UNetAdditionEmbedType.textTime.rawValue):
            additionEmbedType = .textTime
            for key in ["addition_time_embed_dim", "projection_class_embeddings_input_dim"] where reader.values[key, default: .null] == .null {
                throw .invalidConfig(key: key, reason: "addition_embed_type \"text_time\" needs it")
            }
            additionTimeEmbedDim = try reader.int("addition_time_embed_dim", default: 0)
            projectionClassEmbeddingsInputDim = try reader.int("projection_class_embeddings_input_dim", default: 0)
        case let value:
            throw .unsupportedConfig(key: "addition_embed_type", value: value.description, reason: "only \"text_time\" (SDXL) is implemented")
        }
        if reader.values["time_embedding_dim", default: .null] == .null {
            timeEmbeddingDim = blockOutChannels[0] * 4
        } else {
            timeEmbeddingDim = try reader.int("time_embedding_dim", default: 0)
        }
        try validate()
    }

    /// Checks what would otherwise fail (or trap) while building or running the network.
    private func validate() throws(UNetError) {
        for (index, channels) in blockOutChannels.enumerated() where channels % normNumGroups != 0 {
            throw .invalidConfig(key: "block_out_channels", reason: "block \(index) has \(channels) channels, not a multiple of norm_num_groups \(normNumGroups)")
        }
        for (key, kernel) in [("conv_in_kernel", convInKernel), ("conv_out_kernel", convOutKernel)] where kernel % 2 == 0 {
            throw .invalidConfig(key: key, reason: "kernel \(kernel) must be odd to keep the spatial size")
        }
        guard normEps >= 0, normEps.isFinite else { throw .invalidConfig(key: "norm_eps", reason: "\(normEps) is not a finite non-negative number") }
        for block in 0..<blockOutChannels.count where attentionHeadDim[block] > blockOutChannels[block] {
            throw .invalidConfig(key: "attention_head_dim", reason: "\(attentionHeadDim[block]) heads for \(blockOutChannels[block]) channels in block \(block)")
        }
        // The up path pops the skip tensors the down path pushed; diffusers sizes the up resnets from
        // block_out_channels, which only lines up with the pushed tensors for some layer counts.
        var skips = downSkipChannels
        for (block, layers) in upLayerChannels.enumerated() {
            for layer in layers {
                guard let skip = skips.popLast(), skip == layer.skip else {
                    throw .invalidConfig(key: "layers_per_block", reason: "the skip connections of up block \(block) do not match the down path (diffusers cannot run this model either)")
                }
            }
        }
    }

    /// Channels of every tensor the down path pushes for the up path, in push order.
    var downSkipChannels: [Int] {
        var result = [blockOutChannels[0]]
        for block in blockOutChannels.indices {
            result += Array(repeating: blockOutChannels[block], count: layersPerBlock[block])
            if block < blockOutChannels.count - 1 { result.append(blockOutChannels[block]) }
        }
        return result
    }

    /// For each up block, each resnet's (input, skip) channel counts as diffusers sizes them.
    var upLayerChannels: [[(input: Int, skip: Int)]] {
        let reversedChannels = Array(blockOutChannels.reversed())
        let reversedLayers = Array(layersPerBlock.reversed())
        var previousOutput = reversedChannels[0]
        var result: [[(input: Int, skip: Int)]] = []
        for block in reversedChannels.indices {
            let output = reversedChannels[block]
            let input = reversedChannels[min(block + 1, reversedChannels.count - 1)]
            let count = reversedLayers[block] + 1
            result.append((0..<count).map { layer in
                (input: layer == 0 ? previousOutput : output, skip: layer == count - 1 ? input : output)
            })
            previousOutput = output
        }
        return result
    }
}

// MARK: - Reading the raw JSON

private struct AnyConfigKey: CodingKey {
    let stringValue: String
    init(stringValue: String) { self.stringValue = stringValue }
    var intValue: Int? { nil }
    init?(intValue: Int) { nil }
}

/// Any JSON value, kept so a refused setting can be quoted back to the user.
private enum ConfigValue: Decodable, Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([ConfigValue])
    case object

    init(from decoder: any Decoder) throws {
        if var array = try? decoder.unkeyedContainer() {
            var elements: [ConfigValue] = []
            while !array.isAtEnd { elements.append(try array.decode(ConfigValue.self)) }
            self = .array(elements)
            return
        }
        if (try? decoder.container(keyedBy: AnyConfigKey.self)) != nil { self = .object; return }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() { self = .null }
        else if let value = try? single.decode(Bool.self) { self = .bool(value) }
        else if let value = try? single.decode(Double.self) { self = .number(value) }
        else { self = .string(try single.decode(String.self)) }
    }

    var description: String {
        switch self {
        case .null: "null"
        case let .bool(value): "\(value)"
        case let .number(value): value == value.rounded() && abs(value) < 1e15 ? "\(Int(value))" : "\(value)"
        case let .string(value): "\"\(value)\""
        case let .array(values): "[" + values.map(\.description).joined(separator: ", ") + "]"
        case .object: "{...}"
        }
    }
}

private struct ConfigReader {
    let values: [String: ConfigValue]

    /// Settings this engine does not implement, with the value that means "off" in diffusers.
    /// (`dropout` and `addition_embed_type_num_heads` have no effect at inference with the supported
    /// blocks, `upcast_attention` none in float32, so they are accepted with any value.)
    private static let requiredDefaults: [(key: String, allowed: [ConfigValue], reason: String)] = [
        ("center_input_sample", [.bool(false)], "input centering is not implemented"),
        ("mid_block_type", [.string("UNetMidBlock2DCrossAttn")], "only UNetMidBlock2DCrossAttn is implemented"),
        ("only_cross_attention", [.bool(false)], "self-attention layers are always built"),
        ("mid_block_only_cross_attention", [.null, .bool(false)], "self-attention layers are always built"),
        ("dual_cross_attention", [.bool(false)], "DualTransformer2DModel is not implemented"),
        ("downsample_padding", [.number(1)], "downsamplers use padding 1"),
        ("mid_block_scale_factor", [.number(1)], "resnet output scaling is not implemented"),
        ("resnet_out_scale_factor", [.number(1)], "resnet output scaling is not implemented"),
        ("resnet_skip_time_act", [.bool(false)], "only the default resnet time path is implemented"),
        ("resnet_time_scale_shift", [.string("default")], "only the additive time embedding is implemented"),
        ("act_fn", [.string("silu"), .string("swish")], "only SiLU is implemented"),
        ("num_attention_heads", [.null], "diffusers 0.42 itself refuses num_attention_heads; heads come from attention_head_dim"),
        ("reverse_transformer_layers_per_block", [.null], "asymmetric transformer depths are not implemented"),
        ("encoder_hid_dim", [.null], "encoder hidden-state projection is not implemented"),
        ("encoder_hid_dim_type", [.null], "encoder hidden-state projection is not implemented"),
        ("class_embed_type", [.null], "class embeddings are not implemented"),
        ("num_class_embeds", [.null], "class embeddings are not implemented"),
        ("class_embeddings_concat", [.bool(false)], "class embeddings are not implemented"),
        ("time_embedding_type", [.string("positional")], "only the sinusoidal time embedding is implemented"),
        ("time_embedding_act_fn", [.null], "an activation after the time embedding is not implemented"),
        ("timestep_post_act", [.null], "an activation after the time embedding is not implemented"),
        ("attention_type", [.string("default")], "gated (GLIGEN) attention is not implemented"),
        ("cross_attention_norm", [.null], "cross-attention normalisation is not implemented"),
    ]

    func requireDefaults() throws(UNetError) {
        for (key, allowed, reason) in Self.requiredDefaults {
            guard let value = values[key] else { continue }
            // diffusers also accepts only_cross_attention as one flag per block.
            if key == "only_cross_attention", case let .array(flags) = value, flags.allSatisfy({ $0 == .bool(false) }) { continue }
            if !allowed.contains(value) { throw .unsupportedConfig(key: key, value: value.description, reason: reason) }
        }
    }

    private func invalid(_ key: String, _ reason: String) -> UNetError { .invalidConfig(key: key, reason: reason) }

    private func integer(_ value: ConfigValue, _ key: String, range: ClosedRange<Int>) throws(UNetError) -> Int {
        guard case let .number(number) = value, number == number.rounded(), let integer = Int(exactly: number) else {
            throw invalid(key, "expected an integer, found \(value)")
        }
        guard range.contains(integer) else { throw invalid(key, "\(integer) is outside \(range.lowerBound)...\(range.upperBound)") }
        return integer
    }

    /// Dimensions are bounded so a hostile config cannot make the loader allocate absurd tensors.
    static let dimensionRange = 1...65_536

    func int(_ key: String, default fallback: Int, range: ClosedRange<Int> = dimensionRange) throws(UNetError) -> Int {
        guard let value = values[key] else { return fallback }
        return try integer(value, key, range: range)
    }

    func number(_ key: String, default fallback: Double) throws(UNetError) -> Double {
        guard let value = values[key] else { return fallback }
        guard case let .number(number) = value else { throw invalid(key, "expected a number, found \(value)") }
        return number
    }

    func bool(_ key: String, default fallback: Bool) throws(UNetError) -> Bool {
        guard let value = values[key] else { return fallback }
        guard case let .bool(flag) = value else { throw invalid(key, "expected true or false, found \(value)") }
        return flag
    }

    /// An integer for every block, or a list with one per block (`count` nil: any length).
    func intList(_ key: String, default fallback: [Int], count: Int?, range: ClosedRange<Int> = dimensionRange) throws(UNetError) -> [Int] {
        let list: [Int]
        switch values[key] {
        case nil: list = fallback
        case let .array(elements)?:
            var parsed: [Int] = []
            for element in elements { parsed.append(try integer(element, key, range: range)) }
            if parsed.isEmpty { throw invalid(key, "empty list") }
            guard count == nil || parsed.count == count else { throw invalid(key, "\(parsed.count) values for \(count ?? 0) blocks") }
            return parsed
        case let value?: list = [try integer(value, key, range: range)]
        }
        guard let count, list.count == 1 else { return list }
        return Array(repeating: list[0], count: count)
    }

    func blockTypes<T: RawRepresentable>(_ key: String, default fallback: [String]) throws(UNetError) -> [T] where T.RawValue == String {
        var names = fallback
        if let value = values[key] {
            guard case let .array(elements) = value else { throw invalid(key, "expected a list of block names, found \(value)") }
            names = []
            for element in elements {
                guard case let .string(name) = element else { throw invalid(key, "expected a block name, found \(element)") }
                names.append(name)
            }
        }
        var types: [T] = []
        for name in names {
            guard let type = T(rawValue: name) else {
                throw .unsupportedConfig(key: key, value: "\"\(name)\"", reason: "implemented blocks: CrossAttnDownBlock2D, DownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D, CrossAttnUpBlock2D")
            }
            types.append(type)
        }
        return types
    }

    func sampleSize() throws(UNetError) -> [Int]? {
        switch values["sample_size"] {
        case nil, .null?: return nil
        case let .array(elements)? where elements.count == 2:
            return [try integer(elements[0], "sample_size", range: Self.dimensionRange), try integer(elements[1], "sample_size", range: Self.dimensionRange)]
        case let value?:
            let size = try integer(value, "sample_size", range: Self.dimensionRange)
            return [size, size]
        }
    }

    /// One width for all blocks: the model takes one encoder state, so a per-block list must repeat one value.
    func crossAttentionDim(blocks: Int) throws(UNetError) -> Int {
        let key = "cross_attention_dim"
        guard case let .array(elements)? = values[key] else { return try int(key, default: 1280) }
        guard elements.count == blocks else { throw invalid(key, "\(elements.count) values for \(blocks) blocks") }
        var widths: [Int] = []
        for element in elements { widths.append(try integer(element, key, range: Self.dimensionRange)) }
        guard let first = widths.first, widths.allSatisfy({ $0 == first }) else {
            throw .unsupportedConfig(key: key, value: ConfigValue.array(elements).description, reason: "per-block cross-attention widths must be equal")
        }
        return first
    }
}
