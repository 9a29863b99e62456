/// Reads a single-file "original" (CompVis/LDM, or SDXL's SGM) Stable Diffusion checkpoint with diffusers
/// tensor names, so the same network code loads both layouts.
///
/// The whole conversion is the rule table below: each rule renames one family of original
/// keys. Index arithmetic needs the UNet's layers per block and the VAE's block count. SD 2.x keeps
/// its OpenCLIP text encoder under `cond_stage_model.model.` with q, k and v fused in one
/// `in_proj` tensor, which the table splits into three diffusers tensors (row thirds). SDXL keeps CLIP ViT-L
/// under `conditioner.embedders.0.transformer.` and OpenCLIP ViT-bigG under `conditioner.embedders.1.model.`
/// (every layer, and its `text_projection` as the transpose of diffusers' weight); its UNet's added
/// embedding is `label_emb.0`.
public struct OriginalCheckpointSource: TensorSource {
    public enum Component: Sendable {
        case unet(layersPerBlock: Int)
        case vae(blockCount: Int)
        /// SD 1.x: OpenAI CLIP in transformers' names under `cond_stage_model.transformer.`.
        case textEncoder
        /// SD 2.x: OpenCLIP under `cond_stage_model.model.`, with `resblocks` layers in the file. diffusers
        /// conditions on the penultimate layer by dropping the last one (its SD 2 text encoder has
        /// `resblocks - 1` layers, then the final layer norm), so the last resblock is not claimed.
        case openCLIPTextEncoder(resblocks: Int)
        /// SDXL's first text encoder: OpenAI CLIP in transformers' names under `conditioner.embedders.0.transformer.`.
        case sdxlTextEncoder
        /// SDXL's second text encoder: OpenCLIP under `conditioner.embedders.1.model.`, every resblock used
        /// (SDXL takes the penultimate hidden state itself) and the projection.
        case sdxlOpenCLIPTextEncoder
    }

    /// Where a diffusers tensor lives in the file: a whole tensor, or one third of a fused q/k/v one.
    struct Location: Sendable {
        let name: String
        /// 0, 1, 2 for q, k, v rows of an `in_proj` tensor; nil for the whole tensor.
        let third: Int?
        /// The original matrix is the transpose of diffusers' (OpenCLIP's text_projection).
        var transposed = false
    }

    let file: SafeTensorsFile
    /// diffusers name -> where it is in the file, for this component's tensors only.
    let originalName: [String: Location]
    /// Names whose original tensors are 1x1 convolutions standing in for linear layers.
    let squeezed: Set<String>
    /// This component's original keys that no rule maps (a variant the table does not know, such as
    /// an LCM UNet's condition projection): listed under their own names so that strict loading
    /// reports them as unexpected instead of loading the rest as a plain model.
    let unmapped: Set<String>

    public init(file: SafeTensorsFile, component: Component) {
        self.file = file
        var originalName: [String: Location] = [:]
        var squeezed: Set<String> = []
        var unmapped: Set<String> = []
        for name in file.names {
            let mapped = Self.diffusersNames(of: name, component: component)
            if mapped.isEmpty, Self.belongs(name, to: component) { unmapped.insert(name) }
            for (index, diffusers) in mapped.enumerated() {
                originalName[diffusers] = Location(name: name, third: mapped.count == 3 ? index : nil,
                                                   transposed: diffusers == "text_projection.weight")
            }
            if case .vae = component, let diffusers = mapped.first, diffusers.contains(".attentions.0.to_"), file.entries[name]?.shape.count == 4 {
                squeezed.insert(diffusers)
            }
        }
        self.originalName = originalName
        self.squeezed = squeezed
        self.unmapped = unmapped
    }

    public var tensorNames: [String] { (Array(originalName.keys) + unmapped).sorted() }

    public func shape(of name: String) -> [Int]? {
        if unmapped.contains(name) { return file.entries[name]?.shape }
        guard let location = originalName[name], let shape = file.entries[location.name]?.shape else { return nil }
        if squeezed.contains(name) { return Array(shape.prefix(2)) }
        if location.transposed { return shape.count == 2 ? shape.reversed() : nil }
        // A fused tensor whose rows do not split in three has no valid third: the loader reports it as missing.
        if location.third != nil { return shape.first.flatMap { $0 % 3 == 0 ? [$0 / 3] + shape.dropFirst() : nil } }
        return shape
    }

    public func tensor(_ name: String) throws(WeightError) -> Tensor {
        guard let location = originalName[name], let shape = shape(of: name) else { throw .missingTensor(path: file.path, tensor: name) }
        let tensor = try file.tensor(location.name)
        if squeezed.contains(name) { return tensor.reshaped(shape) }
        if location.transposed {
            let result = Tensor(uninitializedShape: shape)
            transposeBatched(tensor.pointer, batch: 1, rows: shape[1], columns: shape[0], into: result.pointer)
            return result
        }
        guard let third = location.third else { return tensor }
        let slice = tensor.slice(third * shape[0]..<(third + 1) * shape[0])
        // fp32 slices stay views of the mapped file; widened fp16/bf16 ones are copied so the
        // other two thirds' memory is not kept alive three times over.
        return file.entries[location.name]?.dtype == .f32 ? slice : slice.copy()
    }

    /// Whether a file looks like an original SD checkpoint (rather than one diffusers component).
    public static func isOriginalCheckpoint(_ file: SafeTensorsFile) -> Bool {
        file.names.contains { $0.hasPrefix("model.diffusion_model.") }
    }

    /// The number of OpenCLIP transformer layers (`resblocks`) in an SD 2.x checkpoint, 0 without any.
    public static func openCLIPResblockCount(_ file: SafeTensorsFile) -> Int {
        let prefix = openCLIPPrefix + "transformer.resblocks."
        let indices = file.names.compactMap { name in
            name.hasPrefix(prefix) ? leadingIndex(name.dropFirst(prefix.count))?.0 : nil
        }
        return (indices.max() ?? -1) + 1
    }

    /// Whether an original key lies in this component's part of the file and is meant to be used:
    /// OpenCLIP's last layer (diffusers conditions on the penultimate one) and its contrastive head
    /// are not, nor the VAE's training loss.
    static func belongs(_ name: String, to component: Component) -> Bool {
        switch component {
        case .unet: return name.hasPrefix(unetPrefix)
        case .vae: return name.hasPrefix(vaePrefix) && !name.hasPrefix(vaePrefix + "loss.")
        case .textEncoder: return name.hasPrefix(textPrefix)
        case let .openCLIPTextEncoder(resblocks):
            guard name.hasPrefix(openCLIPPrefix) else { return false }
            let key = name.dropFirst(openCLIPPrefix.count)
            return key != "text_projection" && key != "logit_scale" && !key.hasPrefix("transformer.resblocks.\(resblocks - 1).")
        case .sdxlTextEncoder: return name.hasPrefix(sdxlTextPrefix)
        case .sdxlOpenCLIPTextEncoder: return name.hasPrefix(sdxlOpenCLIPPrefix) && name != sdxlOpenCLIPPrefix + "logit_scale"
        }
    }

    // MARK: - The rule table

    static let unetPrefix = "model.diffusion_model."
    static let vaePrefix = "first_stage_model."
    static let textPrefix = "cond_stage_model.transformer."
    static let openCLIPPrefix = "cond_stage_model.model."
    static let sdxlTextPrefix = "conditioner.embedders.0.transformer."
    static let sdxlOpenCLIPPrefix = "conditioner.embedders.1.model."

    /// The diffusers names of an original key: none when it belongs to another component (or to the
    /// EMA copy, or is not used), three (q, k, v) for a fused `in_proj` tensor, else one.
    public static func diffusersNames(of name: String, component: Component) -> [String] {
        if case let .openCLIPTextEncoder(resblocks) = component {
            guard name.hasPrefix(openCLIPPrefix) else { return [] }
            return openCLIPNames(String(name.dropFirst(openCLIPPrefix.count)), keptLayers: resblocks - 1)
        }
        if case .sdxlOpenCLIPTextEncoder = component {
            guard name.hasPrefix(sdxlOpenCLIPPrefix) else { return [] }
            let key = String(name.dropFirst(sdxlOpenCLIPPrefix.count))
            return key == "text_projection" ? ["text_projection.weight"] : openCLIPNames(key, keptLayers: Int.max)
        }
        return diffusersName(of: name, component: component).map { [$0] } ?? []
    }

    /// The diffusers name of an original key that maps one to one, or nil when the key belongs to another
    /// component (or to the EMA copy). OpenCLIP keys go through `diffusersNames`.
    public static func diffusersName(of name: String, component: Component) -> String? {
        switch component {
        case .openCLIPTextEncoder, .sdxlOpenCLIPTextEncoder:
            let names = diffusersNames(of: name, component: component)
            return names.count == 1 ? names[0] : nil
        case let .unet(layersPerBlock):
            guard name.hasPrefix(unetPrefix) else { return nil }
            return unetName(String(name.dropFirst(unetPrefix.count)), layersPerBlock: layersPerBlock)
        case let .vae(blockCount):
            guard name.hasPrefix(vaePrefix) else { return nil }
            return vaeName(String(name.dropFirst(vaePrefix.count)), blockCount: blockCount)
        case .textEncoder, .sdxlTextEncoder:
            let prefix = if case .sdxlTextEncoder = component { sdxlTextPrefix } else { textPrefix }
            guard name.hasPrefix(prefix) else { return nil }
            let rest = String(name.dropFirst(prefix.count))
            return rest.hasPrefix("text_model.") ? rest : "text_model." + rest
        }
    }

    /// OpenCLIP's names inside one resblock, as transformers' CLIPEncoderLayer has them.
    static let openCLIPLayerParts: [(String, String)] = [
        ("ln_1.", "layer_norm1."), ("ln_2.", "layer_norm2."), ("attn.out_proj.", "self_attn.out_proj."),
        ("mlp.c_fc.", "mlp.fc1."), ("mlp.c_proj.", "mlp.fc2."),
    ]

    /// The layers below `keptLayers` are mapped. `text_projection` and `logit_scale` belong to CLIP's contrastive
    /// head, which SD 2.x does not use (SDXL's projection is mapped by the caller).
    static func openCLIPNames(_ key: String, keptLayers: Int) -> [String] {
        let fixed: [String: String] = [
            "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
            "positional_embedding": "text_model.embeddings.position_embedding.weight",
            "ln_final.weight": "text_model.final_layer_norm.weight", "ln_final.bias": "text_model.final_layer_norm.bias",
        ]
        if let name = fixed[key] { return [name] }
        let prefix = "transformer.resblocks."
        guard key.hasPrefix(prefix), let (layer, rest) = leadingIndex(key.dropFirst(prefix.count)), layer < keptLayers else { return [] }
        let scope = "text_model.encoder.layers.\(layer)."
        for (fused, kind) in [("attn.in_proj_weight", "weight"), ("attn.in_proj_bias", "bias")] where rest == fused {
            return ["q_proj", "k_proj", "v_proj"].map { "\(scope)self_attn.\($0).\(kind)" }
        }
        let mapped = renamed(rest, openCLIPLayerParts)
        return mapped == rest ? [] : [scope + mapped]
    }

    /// Renames inside a residual block.
    static let resnetParts: [(String, String)] = [
        ("in_layers.0.", "norm1."), ("in_layers.2.", "conv1."), ("emb_layers.1.", "time_emb_proj."),
        ("out_layers.0.", "norm2."), ("out_layers.3.", "conv2."), ("skip_connection.", "conv_shortcut."),
    ]

    static func renamed(_ rest: String, _ parts: [(String, String)]) -> String {
        for (old, new) in parts where rest.hasPrefix(old) { return new + rest.dropFirst(old.count) }
        return rest
    }

    /// Splits "12.rest" into (12, "rest").
    static func leadingIndex<S: StringProtocol>(_ text: S) -> (Int, String)? {
        let parts = text.split(separator: ".", maxSplits: 1)
        guard parts.count == 2, let index = Int(parts[0]) else { return nil }
        return (index, String(parts[1]))
    }

    /// Splits "12.1.rest" into (12, 1, "rest").
    static func indices<S: StringProtocol>(_ text: S) -> (Int, Int, String)? {
        guard let (first, rest) = leadingIndex(text), let (second, tail) = leadingIndex(rest) else { return nil }
        return (first, second, tail)
    }

    static func unetName(_ key: String, layersPerBlock: Int) -> String? {
        let fixed: [(String, String)] = [
            ("time_embed.0.", "time_embedding.linear_1."), ("time_embed.2.", "time_embedding.linear_2."),
            ("label_emb.0.0.", "add_embedding.linear_1."), ("label_emb.0.2.", "add_embedding.linear_2."),
            ("input_blocks.0.0.", "conv_in."), ("out.0.", "conv_norm_out."), ("out.2.", "conv_out."),
        ]
        for (old, new) in fixed where key.hasPrefix(old) { return new + key.dropFirst(old.count) }
        let stride = layersPerBlock + 1
        if key.hasPrefix("input_blocks."), let (index, part, rest) = indices(key.dropFirst("input_blocks.".count)) {
            let (block, layer) = ((index - 1) / stride, (index - 1) % stride)
            if part == 0, rest.hasPrefix("op.") { return "down_blocks.\(index / stride - 1).downsamplers.0.conv.\(rest.dropFirst(3))" }
            if part == 0 { return "down_blocks.\(block).resnets.\(layer).\(renamed(rest, resnetParts))" }
            if part == 1 { return "down_blocks.\(block).attentions.\(layer).\(rest)" }
            return nil
        }
        if key.hasPrefix("middle_block."), let (part, rest) = leadingIndex(key.dropFirst("middle_block.".count)) {
            switch part {
            case 0: return "mid_block.resnets.0.\(renamed(rest, resnetParts))"
            case 1: return "mid_block.attentions.0.\(rest)"
            case 2: return "mid_block.resnets.1.\(renamed(rest, resnetParts))"
            default: return nil
            }
        }
        if key.hasPrefix("output_blocks."), let (index, part, rest) = indices(key.dropFirst("output_blocks.".count)) {
            let (block, layer) = (index / stride, index % stride)
            if part == 0 { return "up_blocks.\(block).resnets.\(layer).\(renamed(rest, resnetParts))" }
            // The upsampler follows the attention when the block has one, so its index is 1 or 2.
            if rest.hasPrefix("conv.") { return "up_blocks.\(block).upsamplers.0.\(rest)" }
            if part == 1 { return "up_blocks.\(block).attentions.\(layer).\(rest)" }
            return nil
        }
        return nil
    }

    static let vaeParts: [(String, String)] = [("nin_shortcut.", "conv_shortcut.")]
    static let vaeAttentionParts: [(String, String)] = [
        ("norm.", "group_norm."), ("q.", "to_q."), ("k.", "to_k."), ("v.", "to_v."), ("proj_out.", "to_out.0."),
    ]

    static func vaeName(_ key: String, blockCount: Int) -> String? {
        if key.hasPrefix("quant_conv.") || key.hasPrefix("post_quant_conv.") { return key }
        let halves = key.split(separator: ".", maxSplits: 1)
        guard halves.count == 2, halves[0] == "encoder" || halves[0] == "decoder" else { return nil }
        let coder = String(halves[0])
        let rest = halves[1]
        if rest.hasPrefix("norm_out.") { return "\(coder).conv_norm_out.\(rest.dropFirst("norm_out.".count))" }
        if rest.hasPrefix("conv_in.") || rest.hasPrefix("conv_out.") { return "\(coder).\(rest)" }
        if rest.hasPrefix("mid.block_1.") { return "\(coder).mid_block.resnets.0.\(renamed(String(rest.dropFirst("mid.block_1.".count)), vaeParts))" }
        if rest.hasPrefix("mid.block_2.") { return "\(coder).mid_block.resnets.1.\(renamed(String(rest.dropFirst("mid.block_2.".count)), vaeParts))" }
        if rest.hasPrefix("mid.attn_1.") { return "\(coder).mid_block.attentions.0.\(renamed(String(rest.dropFirst("mid.attn_1.".count)), vaeAttentionParts))" }
        // The original decoder counts its levels from the bottom; diffusers counts up_blocks from the top.
        let level = coder == "encoder" ? "down." : "up."
        guard rest.hasPrefix(level) else { return nil }
        guard let (original, inner) = leadingIndex(rest.dropFirst(level.count)) else { return nil }
        let block = coder == "encoder" ? "down_blocks.\(original)" : "up_blocks.\(blockCount - 1 - original)"
        if inner.hasPrefix("block."), let (layer, tail) = leadingIndex(inner.dropFirst("block.".count)) {
            return "\(coder).\(block).resnets.\(layer).\(renamed(tail, vaeParts))"
        }
        for (old, new) in [("downsample.", "downsamplers.0."), ("upsample.", "upsamplers.0.")] where inner.hasPrefix(old) {
            return "\(coder).\(block).\(new)\(inner.dropFirst(old.count))"
        }
        return nil
    }
}
