import Foundation

/// Why a LoRA file could not be used; every case names the file.
public enum LoRAError: Error, Equatable, CustomStringConvertible {
    case file(WeightError)
    /// LyCORIS variants other than plain LoRA/LoCon (LoHa, LoKr, ...), named by the key that shows them.
    case unsupportedVariant(path: String, variant: String, key: String)
    case noLoRATensors(path: String)
    case incompletePair(path: String, module: String, missing: String)
    case badShape(path: String, module: String, reason: String)
    /// Modules the LoRA changes that the model does not have: the first few by name, and how many.
    case unknownModules(path: String, first: [String], count: Int)
    case notFound(name: String, folder: String)

    public var description: String {
        switch self {
        case let .file(error): error.description
        case let .unsupportedVariant(path, variant, key):
            "\(path): a \(variant) network (key \(key)); only LoRA and LoCon (lora_up/lora_down, lora_A/lora_B) are supported"
        case let .noLoRATensors(path): "\(path): no LoRA tensors (lora_up/lora_down or lora_A/lora_B weights) in this file"
        case let .incompletePair(path, module, missing): "\(path): \(module) has no \(missing)"
        case let .badShape(path, module, reason): "\(path): \(module): \(reason)"
        case let .unknownModules(path, first, count):
            "\(path): \(count) module(s) the model does not have, e.g. \(first.joined(separator: ", "))"
        case let .notFound(name, folder): "LoRA \"\(name)\" not found in \(folder) (looked for \(name).safetensors)"
        }
    }
}

/// A LoRA file: low-rank updates `up @ down` (times `alpha / rank`) for some weights of the UNet and
/// the text encoder. Read from kohya / AUTOMATIC1111 files (`lora_unet_*`, `lora_te_*` with
/// `.lora_up.weight`, `.lora_down.weight`, `.alpha`; convolutions too: LoCon), diffusers / PEFT files
/// (`unet.*` / `text_encoder.*` with `.lora_A.weight` / `.lora_B.weight`) and diffusers' older
/// attention-processor names (`...processor.to_q_lora.down.weight`). Which model weight each update
/// belongs to is decided when it is merged (`LoRAMerge`), by the model's own parameter names.
public struct LoRA: Sendable {
    /// One low-rank update as the file names it (the module key without the `.lora_*` suffix).
    public struct Update: Sendable {
        public let key: String
        let up: Tensor
        let down: Tensor
        let alpha: Float?

        public var rank: Int { down.shape.first ?? 0 }
        /// `alpha / rank`; files without alpha scale by 1, as diffusers and kohya do.
        public var scale: Float { alpha.map { $0 / Float(max(rank, 1)) } ?? 1 }
    }

    /// The file name without extension, as `<lora:NAME:WEIGHT>` refers to it.
    public let name: String
    public let path: String
    public let updates: [Update]

    /// Key endings of the LyCORIS variants we refuse, with their names.
    static let variants: [(marker: String, name: String)] = [
        (".hada_", "LoHa"), (".lokr_", "LoKr"), (".oft_", "OFT"), (".dora_scale", "DoRA"),
        (".lora_mid.", "LoCon with a CP-decomposed middle (lora_mid)"), (".diff", "full-difference (diff)"),
        (".w_norm", "norm-layer (w_norm)"), (".b_norm", "norm-layer (b_norm)"), (".ia3", "IA3"),
    ]

    public init(path: String) throws(LoRAError) {
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: path) } catch { throw .file(error) }
        self.path = path
        name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent

        var ups: [String: String] = [:]
        var downs: [String: String] = [:]
        var alphas: [String: String] = [:]
        for key in file.names.sorted() {
            if let variant = Self.variants.first(where: { key.contains($0.marker) }) {
                throw .unsupportedVariant(path: path, variant: variant.name, key: key)
            }
            if let module = Self.module(of: key, suffixes: [".lora_up.weight", ".lora_B.weight", ".lora.up.weight", "_lora.up.weight"]) {
                ups[module] = key
            } else if let module = Self.module(of: key, suffixes: [".lora_down.weight", ".lora_A.weight", ".lora.down.weight", "_lora.down.weight"]) {
                downs[module] = key
            } else if let module = Self.module(of: key, suffixes: [".alpha"]) {
                alphas[module] = key
            }
        }
        guard !ups.isEmpty || !downs.isEmpty else { throw .noLoRATensors(path: path) }
        var updates: [Update] = []
        for module in Set(ups.keys).union(downs.keys).sorted() {
            guard let upKey = ups[module] else { throw .incompletePair(path: path, module: module, missing: "up (lora_up / lora_B) weight") }
            guard let downKey = downs[module] else { throw .incompletePair(path: path, module: module, missing: "down (lora_down / lora_A) weight") }
            do {
                let up = try file.tensor(upKey)
                let down = try file.tensor(downKey)
                var alpha: Float?
                if let alphaKey = alphas[module] {
                    let value = try file.tensor(alphaKey)
                    guard value.count == 1, value[flat: 0].isFinite else {
                        throw LoRAError.badShape(path: path, module: module, reason: "alpha is not one finite number")
                    }
                    alpha = value[flat: 0]
                }
                guard up.rank == 2 || up.rank == 4, down.rank == up.rank, down.shape[0] >= 1, up.shape[1] == down.shape[0] else {
                    throw LoRAError.badShape(path: path, module: module, reason: "up \(up.shape) and down \(down.shape) are not a low-rank pair")
                }
                guard up.rank == 2 || (up.shape[2] == 1 && up.shape[3] == 1) else {
                    throw LoRAError.badShape(path: path, module: module, reason: "up \(up.shape) is not a 1x1 convolution")
                }
                updates.append(Update(key: Self.canonical(module), up: up, down: down, alpha: alpha))
            } catch let error as LoRAError {
                throw error
            } catch let error as WeightError {
                throw .file(error)
            } catch {
                throw .badShape(path: path, module: module, reason: "\(error)")
            }
        }
        self.updates = updates
    }

    /// `<folder>/<name>.safetensors`, as A1111 finds `<lora:name:...>`.
    public init(named name: String, in folder: String) throws(LoRAError) {
        let path = URL(fileURLWithPath: folder).appendingPathComponent(name + ".safetensors").path
        guard FileManager.default.fileExists(atPath: path) else { throw .notFound(name: name, folder: folder) }
        try self.init(path: path)
    }

    private static func module(of key: String, suffixes: [String]) -> String? {
        suffixes.first(where: key.hasSuffix).map { String(key.dropLast($0.count)) }
    }

    /// diffusers' attention-processor names to module names: `attn1.processor.to_out_lora` -> `attn1.to_out.0`.
    private static func canonical(_ module: String) -> String {
        guard module.contains(".processor.") else { return module }
        let renamed = module.replacingOccurrences(of: ".processor.", with: ".")
        return renamed.hasSuffix(".to_out") ? renamed + ".0" : renamed
    }
}

/// A LoRA with its strengths, as `--lora FILE:WEIGHT` or `<lora:NAME:TE:UNET>` give them.
public struct LoRAApplication: Sendable {
    public let lora: LoRA
    public let textEncoderWeight: Float
    public let unetWeight: Float

    public init(_ lora: LoRA, weight: Float = 1) {
        self.init(lora, textEncoderWeight: weight, unetWeight: weight)
    }

    public init(_ lora: LoRA, textEncoderWeight: Float, unetWeight: Float) {
        self.lora = lora
        self.textEncoderWeight = textEncoderWeight
        self.unetWeight = unetWeight
    }
}

/// The tensors a network was built from, by name: what `LoRAMerge` starts from, so a LoRA set can be
/// swapped without reading the model again (fp32 tensors stay views of the mapped file).
public struct LoadedTensors: TensorSource {
    let tensors: [String: Tensor]

    init(_ tensors: [String: Tensor]) { self.tensors = tensors }

    public var tensorNames: [String] { tensors.keys.sorted() }
    public func shape(of name: String) -> [Int]? { tensors[name]?.shape }
    public func tensor(_ name: String) throws(WeightError) -> Tensor {
        guard let tensor = tensors[name] else { throw .missingTensor(path: "(loaded)", tensor: name) }
        return tensor
    }

    /// Takes the pages of the tensors used in place from mapped files out of resident memory
    /// (`TensorStorage.releaseResidentPages`).
    func releaseResidentPages() {
        for tensor in tensors.values { tensor.storage.releaseResidentPages() }
    }

    /// The same tensors with `replacements` in place of some.
    func replacing(_ replacements: [String: Tensor]) -> LoadedTensors {
        LoadedTensors(tensors.merging(replacements) { _, new in new })
    }
}

/// Keeps every tensor a network takes while it loads, for `LoadedTensors`.
final class RecordingTensorSource: TensorSource, @unchecked Sendable {
    private let base: any TensorSource
    private let lock = NSLock()
    private var taken: [String: Tensor] = [:]

    init(_ base: any TensorSource) { self.base = base }

    var tensorNames: [String] { base.tensorNames }
    func shape(of name: String) -> [Int]? { base.shape(of: name) }
    func tensor(_ name: String) throws(WeightError) -> Tensor {
        let tensor = try base.tensor(name)
        lock.withLock { taken[name] = tensor }
        return tensor
    }

    var loaded: LoadedTensors { lock.withLock { LoadedTensors(taken) } }
}

/// Merges LoRAs into copies of the weights they change: W + strength * alpha / rank * up @ down.
enum LoRAMerge {
    /// The model's weight names under the names LoRA files use for them: kohya's `lora_unet_` /
    /// `lora_te_` + the module path with `_` for `.`, and diffusers' `unet.` / `text_encoder.` + the path.
    static func keyTable(unet: LoadedTensors, textEncoder: LoadedTensors) -> [String: (isUNet: Bool, weight: String)] {
        var table: [String: (isUNet: Bool, weight: String)] = [:]
        for name in unet.tensorNames where name.hasSuffix(".weight") && [2, 4].contains(unet.shape(of: name)?.count ?? 0) {
            let module = String(name.dropLast(".weight".count))
            table["lora_unet_" + module.replacingOccurrences(of: ".", with: "_")] = (true, name)
            table["unet." + module] = (true, name)
        }
        for name in textEncoder.tensorNames where name.hasSuffix(".weight") && textEncoder.shape(of: name)?.count == 2 {
            var module = String(name.dropLast(".weight".count))
            if module.hasPrefix("text_model.") { module.removeFirst("text_model.".count) }
            table["lora_te_text_model_" + module.replacingOccurrences(of: ".", with: "_")] = (false, name)
            table["text_encoder.text_model." + module] = (false, name)
            table["text_encoder." + module] = (false, name)
        }
        return table
    }

    /// The changed weights of each network (names as in `unet` / `textEncoder`).
    static func merge(_ applications: [LoRAApplication], unet: LoadedTensors,
                      textEncoder: LoadedTensors) throws(LoRAError) -> (unet: [String: Tensor], textEncoder: [String: Tensor]) {
        let table = keyTable(unet: unet, textEncoder: textEncoder)
        var merged: (unet: [String: Tensor], textEncoder: [String: Tensor]) = ([:], [:])
        for application in applications {
            let lora = application.lora
            let unknown = lora.updates.map(\.key).filter { table[$0] == nil }
            guard unknown.isEmpty else { throw .unknownModules(path: lora.path, first: Array(unknown.prefix(5)), count: unknown.count) }
            for update in lora.updates {
                guard let target = table[update.key] else { continue }
                let strength = target.isUNet ? application.unetWeight : application.textEncoderWeight
                guard strength != 0 else { continue }
                let base = target.isUNet ? unet : textEncoder
                guard let original = base.tensors[target.weight] else { continue }
                let current = (target.isUNet ? merged.unet[target.weight] : merged.textEncoder[target.weight]) ?? original
                try check(update, fits: original, path: lora.path)
                let result = addingLowRankProduct(to: current, up: update.up, down: update.down, scale: strength * update.scale)
                if target.isUNet { merged.unet[target.weight] = result } else { merged.textEncoder[target.weight] = result }
            }
        }
        return merged
    }

    private static func check(_ update: LoRA.Update, fits weight: Tensor, path: String) throws(LoRAError) {
        let out = weight.shape[0]
        let columns = weight.count / max(out, 1)
        let downColumns = update.down.count / max(update.rank, 1)
        guard update.up.shape[0] == out, downColumns == columns else {
            throw .badShape(path: path, module: update.key,
                            reason: "up \(update.up.shape) @ down \(update.down.shape) does not fit the model's weight \(weight.shape)")
        }
        // A 3x3 LoCon down on a 3x3 convolution, or a linear LoRA on a linear (or 1x1 convolution) weight.
        if update.down.rank == 4, weight.rank == 4, update.down.shape[2...] != weight.shape[2...] {
            throw .badShape(path: path, module: update.key, reason: "kernel \(update.down.shape) does not match the weight \(weight.shape)")
        }
    }
}
