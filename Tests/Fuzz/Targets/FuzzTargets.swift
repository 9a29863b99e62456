import Foundation
import Sfumato
import SfumatoServer

/// What a stranger can hand Sfumato, one fuzz target each: bytes in, and every problem must come out as
/// a thrown error. A trap, a sanitizer report or a hang is the bug a target looks for, so errors are
/// swallowed here and nothing else is checked. `make fuzz` drives these through libFuzzer
/// (Tests/Fuzz/Driver); the test suite replays the seed corpus (Tests/Fuzz/Corpus/TARGET) through them.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// A .safetensors file: header, tensor table and data, then the file as a checkpoint and as a LoRA.
    case safetensors
    /// Our JSON reader (safetensors headers, tokenizer files).
    case json
    /// unet/config.json; a configuration the default model's weights fit is also built and run.
    case unetConfig = "unet-config"
    /// vae/config.json, likewise.
    case vaeConfig = "vae-config"
    /// text_encoder/config.json, likewise.
    case textConfig = "text-config"
    /// scheduler/scheduler_config.json: every sampler built from it runs a few steps.
    case schedulerConfig = "scheduler-config"
    /// A TAESD (AutoencoderTiny) config.json, built with the test fixture's weights when they fit.
    case taesdConfig = "taesd-config"
    /// A PNG: pixels, text chunks, resizing and the inpainting mask.
    case png
    /// Arbitrary UTF-8 through the CLIP tokenizer.
    case tokenizer
    /// A1111 prompt syntax: attention weights, BREAK, extra-network tags, 77-token chunks.
    case prompt
    /// An AUTOMATIC1111 txt2img / img2img request body, read and validated as the server does.
    case a1111Request = "a1111-request"
    /// An OpenAI image generation request body, likewise.
    case openAIRequest = "openai-request"

    public func run(_ data: [UInt8]) {
        switch self {
        case .safetensors: Self.safetensors(data)
        case .json: data.withUnsafeBufferPointer { _ = try? JSONValue.parse($0) }
        case .unetConfig: Self.unetConfig(data)
        case .vaeConfig: Self.vaeConfig(data)
        case .textConfig: Self.textConfig(data)
        case .schedulerConfig: Self.schedulerConfig(data)
        case .taesdConfig: Self.taesdConfig(data)
        case .png: Self.png(data)
        case .tokenizer: Self.tokenizer(data)
        case .prompt: Self.prompt(data)
        case .a1111Request: Self.a1111Request(data)
        case .openAIRequest: Self.openAIRequest(data)
        }
    }

    /// The repository's root (this file is Tests/Fuzz/Targets/FuzzTargets.swift).
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    /// The seed inputs of this target.
    public var corpus: URL { Self.root.appendingPathComponent("Tests/Fuzz/Corpus").appendingPathComponent(rawValue) }

    // MARK: - The embedded default model, loaded once: its weights meet the fuzzed configurations.

    static let modelFolder = root.appendingPathComponent("Models/sfumato-shapes")

    static let defaultModel: ModelFiles = {
        do { return try ModelFiles(path: modelFolder.path) } catch { fatalError("fuzz harness: cannot find the default model: \(error)") }
    }()

    static let pipeline: StableDiffusionPipeline = {
        do { return try StableDiffusionPipeline(files: defaultModel) } catch { fatalError("fuzz harness: cannot load the default model: \(error)") }
    }()

    static let server = SfumatoServer(models: ModelRegistry(pipelines: [(modelFolder.path, pipeline)]), configuration: ServerConfiguration())

    static func weights(_ component: String) -> any TensorSource {
        do {
            let name = component == "text_encoder" ? "model.safetensors" : "diffusion_pytorch_model.safetensors"
            return try SafeTensorsFile(path: modelFolder.appendingPathComponent(component).appendingPathComponent(name).path)
        } catch {
            fatalError("fuzz harness: cannot read the default model's \(component): \(error)")
        }
    }

    static let unetWeights = weights("unet")
    static let vaeWeights = weights("vae")
    static let textWeights = weights("text_encoder")

    // MARK: - Targets

    static func safetensors(_ data: [UInt8]) {
        // The reader maps a file, so the input becomes one (a fresh name: tests replay in parallel).
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sfumato-fuzz-\(UUID().uuidString).safetensors").path
        guard FileManager.default.createFile(atPath: path, contents: Data(data)) else { fatalError("fuzz harness: cannot write \(path)") }
        defer { try? FileManager.default.removeItem(atPath: path) }
        if let file = try? SafeTensorsFile(path: path) {
            for name in file.names { _ = try? file.tensor(name) }
        }
        _ = try? LoRA(path: path)
        // As a single-file checkpoint: its family, then every network through the name table.
        if let files = try? ModelFiles(path: path, tokenizer: modelFolder.appendingPathComponent("tokenizer").path) {
            _ = try? StableDiffusionPipeline(files: files)
        }
    }

    static func unetConfig(_ data: [UInt8]) {
        guard let config = try? UNet2DConditionConfig(json: Data(data)),
              let unet = try? UNet2DConditionModel(config: config, weights: unetWeights) else { return }
        let side = config.spatialFactor
        let sample = Tensor(repeating: 0.5, shape: [1, config.inChannels, side, side])
        let states = Tensor(repeating: 0.25, shape: [1, 3, config.crossAttentionDim])
        _ = try? unet(sample, timestep: 999, encoderHiddenStates: states)
    }

    static func vaeConfig(_ data: [UInt8]) {
        guard let config = try? JSONDecoder().decode(AutoencoderKLConfig.self, from: Data(data)),
              let vae = try? AutoencoderKL(config: config, weights: vaeWeights) else { return }
        let factor = 1 << (config.blockOutChannels.count - 1)
        _ = try? vae.decode(Tensor(repeating: 0.5, shape: [1, config.latentChannels, 1, 1]))
        _ = try? vae.encode(Tensor(repeating: 0.5, shape: [1, config.inChannels, factor, factor]))
    }

    static func textConfig(_ data: [UInt8]) {
        guard let config = try? JSONDecoder().decode(CLIPTextConfig.self, from: Data(data)),
              let model = try? CLIPTextModel(config: config, weights: textWeights) else { return }
        _ = try? model([[0, 1, Int32(config.vocabSize - 1)]], clipSkip: min(2, config.numHiddenLayers))
    }

    static func schedulerConfig(_ data: [UInt8]) {
        guard let config = try? SchedulerConfig.decode(json: Data(data)) else { return }
        _ = try? SchedulerKind(defaultFor: config)
        let sample = Tensor(shape: [1, 1, 1, 2], values: [0.5, -0.5])
        for kind in SchedulerKind.allCases {
            for steps in [1, 3] {
                guard var scheduler = try? makeScheduler(kind: kind, config: config, steps: steps) else { continue }
                var random: any RandomSource = TorchRandom(seed: 0)
                var latents = sample
                for index in scheduler.timesteps.indices {
                    let input = scheduler.scaleModelInput(latents, stepIndex: index)
                    latents = scheduler.step(modelOutput: input, stepIndex: index, sample: latents, random: &random).prevSample
                }
                for index in scheduler.timesteps.indices { _ = scheduler.addNoise(sample, noise: sample, stepIndex: index) }
            }
        }
    }

    static let taesdWeights: any TensorSource = {
        let path = root.appendingPathComponent("Tests/Fixtures/taesd/diffusion_pytorch_model.safetensors").path
        do { return try SafeTensorsFile(path: path) } catch { fatalError("fuzz harness: cannot read \(path): \(error)") }
    }()

    static func taesdConfig(_ data: [UInt8]) {
        guard let config = try? JSONDecoder().decode(AutoencoderTinyConfig.self, from: Data(data)),
              let tiny = try? AutoencoderTiny(config: config, weights: taesdWeights) else { return }
        _ = try? tiny.decode(Tensor(repeating: 0.5, shape: [1, config.latentChannels, 1, 1]))
    }

    static func png(_ data: [UInt8]) {
        _ = try? decodePNGText(data, name: "fuzz.png")
        guard let image = try? decodePNG(data, name: "fuzz.png") else { return }
        _ = try? image.resized(width: 8, height: 8)
        _ = image.inpaintingMask()
        _ = image.normalizedTensor()
    }

    static func tokenizer(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        let tokenizer = pipeline.tokenizer
        _ = tokenizer.encode(text)
        _ = tokenizer.tokens(text)
        for id in tokenizer.textTokens(text) { _ = tokenizer.tokenString(id) }
    }

    static func prompt(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        _ = try? PromptParser.parseAttention(text)
        let (plain, tags) = ExtraNetworks.parse(text)
        for tag in tags { _ = try? ExtraNetworks.loraReference(tag) }
        _ = try? pipeline.tokenizer.chunks(plain)
        // What a request with this prompt meets first.
        _ = try? pipeline.validate(GenerationRequest(prompt: text, negativePrompt: text, steps: 1))
    }

    static func a1111Request(_ data: [UInt8]) {
        for img2img in [false, true] {
            guard let job = try? server.a1111Job(data, img2img: img2img) else { continue }
            for request in job.requests { _ = try? job.model.pipeline.validate(request) }
        }
    }

    static func openAIRequest(_ data: [UInt8]) {
        guard let job = try? server.openAIJob(data) else { return }
        for request in job.requests { _ = try? job.model.pipeline.validate(request) }
    }
}
