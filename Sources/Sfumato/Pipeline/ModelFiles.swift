import Foundation

/// Why a model could not be loaded; each case names the file or folder at fault.
public enum ModelLoadError: Error, CustomStringConvertible {
    case notFound(path: String)
    case missingFile(path: String, what: String)
    case unsupportedWeights(path: String, reason: String)
    case invalidConfig(path: String, reason: String)
    case weights(WeightError)
    case parameters(ParameterMismatch)
    /// A single-file checkpoint whose family cannot be told from its tensors (or contradicts the one given).
    case family(path: String, reason: String)

    public var description: String {
        switch self {
        case let .notFound(path): "model not found: \(path) (give a diffusers folder or a .safetensors checkpoint)"
        case let .missingFile(path, what): "\(path): missing \(what)"
        case let .unsupportedWeights(path, reason): "\(path): \(reason)"
        case let .invalidConfig(path, reason): "\(path): \(reason)"
        case let .weights(error): error.description
        case let .parameters(mismatch): mismatch.description
        case let .family(path, reason): "\(path): \(reason)"
        }
    }
}

/// Where a model's parts live on disk: a diffusers folder or a single-file original checkpoint.
public struct ModelFiles: Sendable {
    enum Layout: Sendable {
        /// `model_index.json` with text_encoder/, tokenizer/, unet/, vae/, scheduler/ beside it.
        case diffusers(root: URL)
        /// An original (CompVis) checkpoint holding all three networks.
        case singleFile(checkpoint: SafeTensorsFile)
    }

    let layout: Layout
    /// The folder with vocab.json and merges.txt, if one was found.
    public let tokenizerFolder: URL?
    /// The family given, or for a single-file checkpoint read through a preset, the one its tensors show.
    public let family: ModelFamily?
    /// Single file: a diffusers folder whose config.json files describe the checkpoint (diffusers'
    /// `from_single_file(config=...)`); nil: the family's preset.
    let configurationFolder: URL?
    /// Single file without a configuration folder: how its text encoder is stored.
    let textEncoderLayout: OriginalCheckpointSource.Component

    /// Classifies `path`. `tokenizer` overrides where the vocabulary comes from (needed for a single-file
    /// checkpoint without a tokenizer/ folder beside it). `family` picks the defaults, and for a single file
    /// its configurations (it must agree with the checkpoint's tensors; SD 2.x files need it, since their
    /// 512 and 768 variants hold the same tensors). `configuration` (single files): a diffusers folder
    /// with the model's config.json files, used instead of a family's preset.
    public init(path: String, tokenizer: String? = nil, family: ModelFamily? = nil,
                configuration: String? = nil) throws(ModelLoadError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw .notFound(path: path) }
        let url = URL(fileURLWithPath: path)
        var candidates: [URL] = []
        if isDirectory.boolValue {
            guard FileManager.default.fileExists(atPath: url.appendingPathComponent("unet").path) else {
                throw .missingFile(path: path, what: "unet/ (not a diffusers model folder)")
            }
            if configuration != nil {
                throw .invalidConfig(path: path, reason: "a diffusers folder has its own configurations; a configuration folder is for single-file checkpoints")
            }
            layout = .diffusers(root: url)
            self.family = family
            configurationFolder = nil
            textEncoderLayout = .textEncoder
            candidates.append(url.appendingPathComponent("tokenizer"))
        } else {
            if ["ckpt", "bin", "pt", "pth"].contains(url.pathExtension) {
                throw .unsupportedWeights(path: path, reason: "pickled PyTorch checkpoints are not loaded (they can run code); use the .safetensors version")
            }
            let file: SafeTensorsFile
            do { file = try SafeTensorsFile(path: path) } catch { throw .weights(error) }
            let sdxl = file.names.contains { $0.hasPrefix(OriginalCheckpointSource.sdxlOpenCLIPPrefix) }
            if !sdxl, file.names.contains(where: { $0.hasPrefix("conditioner.embedders.") }) {
                throw .unsupportedWeights(path: path, reason: "an SDXL refiner checkpoint (one OpenCLIP text encoder); Sfumato runs SDXL base models")
            }
            guard OriginalCheckpointSource.isOriginalCheckpoint(file) else {
                throw .unsupportedWeights(path: path, reason: "not a Stable Diffusion checkpoint (no model.diffusion_model.* tensors)")
            }
            layout = .singleFile(checkpoint: file)
            let resblocks = OriginalCheckpointSource.openCLIPResblockCount(file)
            textEncoderLayout = sdxl ? .sdxlTextEncoder : resblocks > 0 ? .openCLIPTextEncoder(resblocks: resblocks) : .textEncoder
            if let configuration {
                configurationFolder = URL(fileURLWithPath: configuration)
                self.family = family
                candidates.append(URL(fileURLWithPath: configuration).appendingPathComponent("tokenizer"))
            } else {
                configurationFolder = nil
                self.family = try Self.singleFileFamily(file, given: family)
            }
            candidates.append(url.deletingLastPathComponent().appendingPathComponent("tokenizer"))
        }
        if let tokenizer {
            tokenizerFolder = URL(fileURLWithPath: tokenizer)
        } else {
            tokenizerFolder = candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("vocab.json").path) }
        }
    }

    /// The family of a single-file checkpoint, from its text encoder's width: CLIP ViT-L (768) is SD 1.x,
    /// OpenCLIP ViT-H (1024) SD 2.x, whose variants the caller must name. Anything else is refused.
    static func singleFileFamily(_ file: SafeTensorsFile, given: ModelFamily?) throws(ModelLoadError) -> ModelFamily {
        if file.names.contains(where: { $0.hasPrefix(OriginalCheckpointSource.sdxlOpenCLIPPrefix) }) {
            guard let given else { return .sdxl }
            guard given.isSDXL else {
                throw .family(path: file.path, reason: "an SDXL checkpoint (two text encoders), not \(given.rawValue) (use sdxl or sdxl-turbo)")
            }
            return given
        }
        let keys = ["cond_stage_model.model.token_embedding.weight",
                    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
                    "cond_stage_model.transformer.embeddings.token_embedding.weight"]
        guard let key = keys.first(where: { file.entries[$0] != nil }), let shape = file.entries[key]?.shape, shape.count == 2 else {
            throw .family(path: file.path, reason: "no text encoder (cond_stage_model.*) found, so the model family is unknown; "
                          + "give its diffusers configuration folder with --model-config")
        }
        let openCLIP = key.hasPrefix("cond_stage_model.model.")
        let sd2Names = [ModelFamily.sd2Base, .sd2, .sdTurbo].map(\.rawValue).joined(separator: ", ")
        switch (shape[1], openCLIP) {
        case (768, false):
            guard let given, given != .sd1 else { return .sd1 }
            throw .family(path: file.path, reason: "the text encoder is CLIP ViT-L (768 wide), an SD 1.x model, not \(given.rawValue)")
        case (1024, true):
            guard let given else {
                throw .family(path: file.path, reason: "an SD 2.x checkpoint (OpenCLIP text encoder, 1024 wide): its 512 (epsilon) "
                              + "and 768 (v-prediction) variants hold the same tensors; say which with --model-type (\(sd2Names))")
            }
            guard given.usesOpenCLIP else {
                throw .family(path: file.path, reason: "the text encoder is OpenCLIP ViT-H (1024 wide), an SD 2.x model, not \(given.rawValue) (use \(sd2Names))")
            }
            return given
        default:
            throw .family(path: file.path, reason: "an \(openCLIP ? "OpenCLIP" : "OpenAI CLIP") text encoder \(shape[1]) wide is neither SD 1.x (CLIP, 768) "
                          + "nor SD 2.x (OpenCLIP, 1024); give the model's diffusers configuration folder with --model-config")
        }
    }

    /// Whether the model is SDXL's kind, with a second text encoder (text_encoder_2/, or an SDXL single file).
    public var hasSecondTextEncoder: Bool {
        switch layout {
        case let .diffusers(root): FileManager.default.fileExists(atPath: root.appendingPathComponent("text_encoder_2").path)
        case .singleFile: if case .sdxlTextEncoder = textEncoderLayout { true } else { false }
        }
    }

    /// SDXL: the second tokenizer's folder, tokenizer_2/ of the model (or configuration) folder, else the first
    /// tokenizer's (the same vocabulary; the preset pads it with "!").
    func requireSecondTokenizerFolder() throws(ModelLoadError) -> URL {
        let folder: URL? = switch layout {
        case let .diffusers(root): root
        case .singleFile: configurationFolder
        }
        if let folder {
            let second = folder.appendingPathComponent("tokenizer_2")
            if FileManager.default.fileExists(atPath: second.appendingPathComponent("vocab.json").path) { return second }
            if case .diffusers = layout { throw .missingFile(path: second.path, what: "vocab.json (the second tokenizer of an SDXL folder)") }
        }
        return try requireTokenizerFolder()
    }

    /// SDXL's `force_zeros_for_empty_prompt` from model_index.json (the model's or the configuration folder's);
    /// true when not stated, as diffusers' StableDiffusionXLPipeline defaults.
    public var forceZerosForEmptyPrompt: Bool {
        let folder: URL? = switch layout {
        case let .diffusers(root): root
        case .singleFile: configurationFolder
        }
        struct PipelineIndex: Decodable {
            let force_zeros_for_empty_prompt: Bool?
        }
        guard let folder, let data = try? Data(contentsOf: folder.appendingPathComponent("model_index.json")) else { return true }
        return (try? JSONDecoder().decode(PipelineIndex.self, from: data))?.force_zeros_for_empty_prompt ?? true
    }

    /// The preset a single file is read with (nil: a diffusers folder, or a configuration folder).
    var preset: ModelPreset? {
        guard case .singleFile = layout, configurationFolder == nil else { return nil }
        return family?.preset
    }

    /// The tokenizer folder, or an error saying how to give one.
    func requireTokenizerFolder() throws(ModelLoadError) -> URL {
        guard let tokenizerFolder else {
            throw .missingFile(path: displayName, what: "a tokenizer: pass --tokenizer PATH (a folder with vocab.json and merges.txt) or put tokenizer/ beside the checkpoint")
        }
        return tokenizerFolder
    }

    /// The scheduler configuration alone (scheduler/scheduler_config.json, or the family's preset for a single file).
    public func schedulerConfig() throws(ModelLoadError) -> SchedulerConfig {
        try config(component: "scheduler") { data, _ in try SchedulerConfig.decode(json: data) }
    }

    /// Reads a component's config.json (diffusers folder, or a single file's configuration folder) or the
    /// family's preset (single file) with the component's own decoder, which refuses values we do not support.
    func config<Config>(component: String, decode: (Data, String) throws -> Config) throws(ModelLoadError) -> Config {
        let data: Data
        let source: String
        let folder: URL? = switch layout {
        case let .diffusers(root): root
        case .singleFile: configurationFolder
        }
        if let folder {
            let url = folder.appendingPathComponent(component).appendingPathComponent(component == "scheduler" ? "scheduler_config.json" : "config.json")
            source = url.path
            do { data = try Data(contentsOf: url) } catch { throw .missingFile(path: url.path, what: "the component's configuration") }
        } else if let preset, let family {
            source = "built-in \(family.rawValue) \(component) configuration"
            data = Data(preset.config(component: component).utf8)
        } else {
            throw .family(path: displayName, reason: "no configuration for the \(component)")
        }
        do { return try decode(data, source) } catch {
            throw .invalidConfig(path: source, reason: "\(error)")
        }
    }

    /// The tensors of one component: the diffusers weight file(s), or the checkpoint seen through the name table.
    func tensors(component: String, original: OriginalCheckpointSource.Component) throws(ModelLoadError) -> any TensorSource {
        switch layout {
        case let .diffusers(root):
            let folder = root.appendingPathComponent(component)
            let base = component.hasPrefix("text_encoder") ? "model" : "diffusion_pytorch_model"
            let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            // Prefer full precision; fall back to the fp16 variant; sharded files are read together.
            let candidates = [
                files.filter { $0 == "\(base).safetensors" },
                files.filter { $0.hasPrefix("\(base)-") && $0.hasSuffix(".safetensors") && !$0.contains(".fp16.") },
                files.filter { $0 == "\(base).fp16.safetensors" },
                files.filter { $0.hasPrefix("\(base)-") && $0.hasSuffix(".fp16.safetensors") },
            ]
            guard let chosen = candidates.first(where: { !$0.isEmpty }) else {
                if files.contains(where: { $0.hasSuffix(".bin") }) {
                    throw .unsupportedWeights(path: folder.path, reason: "only pickled .bin weights found; Sfumato reads .safetensors")
                }
                throw .missingFile(path: folder.path, what: "\(base).safetensors")
            }
            var sources: [any TensorSource] = []
            for name in chosen.sorted() {
                do { sources.append(try SafeTensorsFile(path: folder.appendingPathComponent(name).path)) } catch { throw .weights(error) }
            }
            return sources.count == 1 ? sources[0] : CombinedTensorSource(sources)
        case let .singleFile(checkpoint):
            return OriginalCheckpointSource(file: checkpoint, component: component == "text_encoder" ? textEncoderLayout : original)
        }
    }

    /// A short name for the PNG metadata: the folder or file name.
    public var displayName: String {
        switch layout {
        case let .diffusers(root): root.lastPathComponent
        case let .singleFile(checkpoint): URL(fileURLWithPath: checkpoint.path).deletingPathExtension().lastPathComponent
        }
    }
}
