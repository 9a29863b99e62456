import Foundation

/// Why a model could not be loaded; each case names the file or folder at fault.
public enum ModelLoadError: Error, CustomStringConvertible {
    case notFound(path: String)
    case missingFile(path: String, what: String)
    case unsupportedWeights(path: String, reason: String)
    case invalidConfig(path: String, reason: String)
    case weights(WeightError)
    case parameters(ParameterMismatch)

    public var description: String {
        switch self {
        case let .notFound(path): "model not found: \(path) (give a diffusers folder or a .safetensors checkpoint)"
        case let .missingFile(path, what): "\(path): missing \(what)"
        case let .unsupportedWeights(path, reason): "\(path): \(reason)"
        case let .invalidConfig(path, reason): "\(path): \(reason)"
        case let .weights(error): error.description
        case let .parameters(mismatch): mismatch.description
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

    /// Classifies `path`; `tokenizer` overrides where the vocabulary comes from (needed for
    /// a single-file checkpoint without a tokenizer/ folder beside it).
    public init(path: String, tokenizer: String? = nil) throws(ModelLoadError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw .notFound(path: path) }
        let url = URL(fileURLWithPath: path)
        let beside: URL
        if isDirectory.boolValue {
            guard FileManager.default.fileExists(atPath: url.appendingPathComponent("unet").path) else {
                throw .missingFile(path: path, what: "unet/ (not a diffusers model folder)")
            }
            layout = .diffusers(root: url)
            beside = url.appendingPathComponent("tokenizer")
        } else {
            if ["ckpt", "bin", "pt", "pth"].contains(url.pathExtension) {
                throw .unsupportedWeights(path: path, reason: "pickled PyTorch checkpoints are not loaded (they can run code); use the .safetensors version")
            }
            let file: SafeTensorsFile
            do { file = try SafeTensorsFile(path: path) } catch { throw .weights(error) }
            guard OriginalCheckpointSource.isOriginalCheckpoint(file) else {
                throw .unsupportedWeights(path: path, reason: "not a Stable Diffusion 1.x checkpoint (no model.diffusion_model.* tensors)")
            }
            layout = .singleFile(checkpoint: file)
            beside = url.deletingLastPathComponent().appendingPathComponent("tokenizer")
        }
        if let tokenizer {
            tokenizerFolder = URL(fileURLWithPath: tokenizer)
        } else {
            tokenizerFolder = FileManager.default.fileExists(atPath: beside.appendingPathComponent("vocab.json").path) ? beside : nil
        }
    }

    /// The tokenizer folder, or an error saying how to give one.
    func requireTokenizerFolder() throws(ModelLoadError) -> URL {
        guard let tokenizerFolder else {
            throw .missingFile(path: displayName, what: "a tokenizer: pass --tokenizer PATH (a folder with vocab.json and merges.txt) or put tokenizer/ beside the checkpoint")
        }
        return tokenizerFolder
    }

    /// The scheduler configuration alone (scheduler/scheduler_config.json, or SD 1.5's for a single file).
    public func schedulerConfig() throws(ModelLoadError) -> SchedulerConfig {
        try config(component: "scheduler", sd15Default: SD15Defaults.scheduler) { data, _ in try SchedulerConfig.decode(json: data) }
    }

    /// Reads a component's config.json (diffusers) or the SD 1.5 default (single file) with the
    /// component's own decoder, which refuses values we do not support.
    func config<Config>(component: String, sd15Default: String,
                        decode: (Data, String) throws -> Config) throws(ModelLoadError) -> Config {
        let data: Data
        let source: String
        switch layout {
        case let .diffusers(root):
            let url = root.appendingPathComponent(component).appendingPathComponent(component == "scheduler" ? "scheduler_config.json" : "config.json")
            source = url.path
            do { data = try Data(contentsOf: url) } catch { throw .missingFile(path: url.path, what: "the component's configuration") }
        case .singleFile:
            source = "built-in SD 1.5 \(component) configuration"
            data = Data(sd15Default.utf8)
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
            let base = component == "text_encoder" ? "model" : "diffusion_pytorch_model"
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
            return OriginalCheckpointSource(file: checkpoint, component: original)
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
