import Foundation
@testable import Sfumato
import Testing

/// SD 2.x and LCM against diffusers on tiny models (Tests/Reference/fixtures_sd2.py): the networks, the
/// v-prediction pipeline from the diffusers folder and from an original single-file checkpoint, and an
/// LCM UNet with its guidance embedding.
@Suite struct SD2Tests {
    static let folder = Result { try StableDiffusionPipeline(files: try ModelFiles(path: Fixtures.path("tiny-sd2"))) }
    static let singleFile = Result {
        try StableDiffusionPipeline(files: try ModelFiles(path: Fixtures.path("checkpoint/tiny-sd2-single.safetensors"),
                                                          configuration: Fixtures.path("tiny-sd2")))
    }

    static func ids(_ tensor: Tensor) -> [[Int32]] {
        (0..<tensor.shape[0]).map { row in (0..<tensor.shape[1]).map { Int32(tensor[flat: row * tensor.shape[1] + $0]) } }
    }

    /// SD 2.x tokenizers pad with "!" (id 0 in CLIP's vocabulary and the tiny one).
    @Test func tokenizerPadsWithExclamationMark() throws {
        let file = try Fixtures.file("sd2/networks.safetensors")
        let tokenizer = try Self.folder.get().tokenizer
        #expect(tokenizer.padID == 0)
        let prompts = try #require(file.metadata["prompts"]).split(separator: "|").map(String.init)
        #expect(prompts.map { tokenizer.encode($0) } == Self.ids(try file.tensor("input_ids")))
    }

    @Test(arguments: ["folder", "single file"])
    func textEncoderAndUNetMatchDiffusers(source: String) throws {
        let pipeline = try (source == "folder" ? Self.folder : Self.singleFile).get()
        let file = try Fixtures.file("sd2/networks.safetensors")
        #expect(pipeline.textEncoder.config.hiddenAct == .gelu && pipeline.textEncoder.config.numHiddenLayers == 2)
        let states = try pipeline.textEncoder(Self.ids(try file.tensor("input_ids")))
        expectClose(states, try file.tensor("text_states"), tolerance: 1e-4, "\(source) text encoder")
        let config = pipeline.unet.config
        #expect(config.useLinearProjection && config.upcastAttention && config.attentionHeadDim == [2, 4])
        let output = try pipeline.unet(try file.tensor("unet.sample"), timestep: Double(try file.tensor("unet.timestep")[flat: 0]),
                                       encoderHiddenStates: try file.tensor("text_states"))
        expectClose(output, try file.tensor("unet.output"), tolerance: 1e-4, "\(source) UNet")
    }

    /// The single file's networks are the folder's, bit for bit (its UNet is fp16 as the folder's is).
    @Test func singleFileEqualsFolder() throws {
        let (folder, single) = (try Self.folder.get(), try Self.singleFile.get())
        let file = try Fixtures.file("sd2/networks.safetensors")
        let ids = Self.ids(try file.tensor("input_ids"))
        #expect(try single.textEncoder(ids).toArray() == folder.textEncoder(ids).toArray())
        let sample = try file.tensor("unet.sample")
        let states = try file.tensor("text_states")
        #expect(try single.unet(sample, timestep: 10, encoderHiddenStates: states).toArray()
            == folder.unet(sample, timestep: 10, encoderHiddenStates: states).toArray())
    }

    /// An fp16 OpenCLIP text encoder: the fused in_proj is widened, then split (and the thirds copied).
    @Test func fp16OpenCLIPTextEncoder() throws {
        let file = try Fixtures.file("checkpoint/tiny-sd2-text-fp16.safetensors")
        let resblocks = OriginalCheckpointSource.openCLIPResblockCount(file)
        #expect(resblocks == 3)
        let source = OriginalCheckpointSource(file: file, component: .openCLIPTextEncoder(resblocks: resblocks))
        let q = try source.tensor("text_model.encoder.layers.0.self_attn.q_proj.weight")
        #expect(q.shape == [32, 32] && q.storage.count == 32 * 32)
        let model = try CLIPTextModel(config: try Self.folder.get().textEncoder.config, weights: source)
        let ids = Self.ids(try Fixtures.file("sd2/networks.safetensors").tensor("input_ids"))
        expectClose(try model(ids), try Fixtures.file("sd2/text-fp16.safetensors").tensor("text_states"), tolerance: 1e-4, "fp16 text encoder")
    }

    static func request(_ file: SafeTensorsFile, scheduler: SchedulerKind) throws -> GenerationRequest {
        let meta = file.metadata
        return GenerationRequest(
            prompt: try #require(meta["prompt"]), negativePrompt: meta["negative_prompt"] ?? "",
            steps: Int(try #require(meta["steps"]))!, guidanceScale: Float(try #require(meta["guidance_scale"]))!,
            seed: UInt64(try #require(meta["seed"]))!, width: Int(try #require(meta["width"])),
            height: Int(try #require(meta["height"])), scheduler: scheduler)
    }

    static func expectImage(_ pipeline: StableDiffusionPipeline, _ request: GenerationRequest, _ file: SafeTensorsFile, _ what: String) throws {
        let latents = try pipeline.generateLatents(request)
        expectClose(latents, try file.tensor("latents"), tolerance: 1e-3, "\(what) latents")
        let image = try pipeline.decode(latents)
        let reference = try file.tensor("pixels")
        #expect(reference.shape == [image.height, image.width, 3])
        let close = zip(image.pixels, reference.toArray()).filter { abs(Float($0) - $1) <= 2 }.count
        let share = Double(close) / Double(reference.count)
        #expect(share >= 0.99, "\(what): only \(share * 100)% of pixel values within 2 levels of diffusers")
    }

    /// v-prediction DDIM with guidance, and Euler with trailing spacing (SD-Turbo's sampler) without.
    @Test(arguments: [("ddim", SchedulerKind.ddim), ("euler-trailing", .euler)], ["folder", "single file"])
    func drawsWhatDiffusersDraws(case: (name: String, kind: SchedulerKind), source: String) throws {
        let pipeline = try (source == "folder" ? Self.folder : Self.singleFile).get()
        #expect(pipeline.schedulerConfig.predictionType == .vPrediction)
        #expect(pipeline.family == .sd2 && pipeline.tokenizer.padID == 0)
        let file = try Fixtures.file("sd2/\(`case`.name).safetensors")
        var request = try Self.request(file, scheduler: `case`.kind)
        if `case`.name == "euler-trailing" {
            // The model's own scheduler as SD-Turbo's config has it: Euler with trailing spacing (999, 499).
            request.scheduler = nil
            let (files, folder) = try Self.withTrailingEuler(source: source)
            defer { try? FileManager.default.removeItem(at: folder) }
            let trailing = try StableDiffusionPipeline(files: files)
            #expect(try makeScheduler(kind: SchedulerKind(defaultFor: trailing.schedulerConfig), config: trailing.schedulerConfig,
                                      steps: request.steps).timesteps == [999, 499])
            try Self.expectImage(trailing, request, file, "\(source) \(`case`.name)")
        } else {
            try Self.expectImage(pipeline, request, file, "\(source) \(`case`.name)")
        }
    }

    /// The tiny model with diffusers' Euler switched to trailing spacing as its scheduler_config.json, as a
    /// folder or as the single file's configuration folder.
    static func withTrailingEuler(source: String) throws -> (ModelFiles, URL) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sfumato-sd2-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: Fixtures.root.appendingPathComponent("tiny-sd2"), to: folder)
        let json = #"{"_class_name": "EulerDiscreteScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "# +
            #""num_train_timesteps": 1000, "prediction_type": "v_prediction", "steps_offset": 1, "timestep_spacing": "trailing"}"#
        try Data(json.utf8).write(to: folder.appendingPathComponent("scheduler/scheduler_config.json"))
        let files = source == "folder" ? try ModelFiles(path: folder.path)
            : try ModelFiles(path: Fixtures.path("checkpoint/tiny-sd2-single.safetensors"), configuration: folder.path)
        return (files, folder)
    }

    // MARK: - LCM

    @Test func guidanceEmbeddingAndLCMUNetMatchDiffusers() throws {
        let file = try Fixtures.file("sd2/lcm-unet.safetensors")
        let scales = try file.tensor("guidance_scales").toArray()
        let condition = guidanceScaleEmbedding(scales, dimension: 16)
        expectClose(condition, try file.tensor("condition"), tolerance: 1e-5, "guidance embedding")
        let pipeline = try StableDiffusionPipeline(files: try ModelFiles(path: Fixtures.path("tiny-lcm")))
        #expect(pipeline.unet.config.timeCondProjDim == 16 && pipeline.family == .lcm)
        let output = try pipeline.unet(try file.tensor("sample"), timestep: 321, encoderHiddenStates: try file.tensor("encoder_hidden_states"),
                                       timestepCondition: condition)
        expectClose(output, try file.tensor("output"), tolerance: 1e-4, "LCM UNet")
        // A condition of the wrong width is refused, not read out of bounds.
        #expect(throws: UNetError.self) {
            try pipeline.unet(try file.tensor("sample"), timestep: 321, encoderHiddenStates: try file.tensor("encoder_hidden_states"),
                              timestepCondition: guidanceScaleEmbedding(scales, dimension: 8))
        }
    }

    /// diffusers' StableDiffusionPipeline with an LCM UNet: no second batch, the scale as an embedding.
    @Test func lcmPipelineDrawsWhatDiffusersDraws() throws {
        let pipeline = try StableDiffusionPipeline(files: try ModelFiles(path: Fixtures.path("tiny-lcm")))
        let file = try Fixtures.file("sd2/lcm-pipeline.safetensors")
        try Self.expectImage(pipeline, try Self.request(file, scheduler: .ddim), file, "LCM")
        #expect(pipeline.defaults == GenerationDefaults(steps: 4, guidanceScale: 8.5))
    }

    // MARK: - Families and single-file defaults

    static func configs(_ family: ModelFamily) throws -> (CLIPTextConfig, UNet2DConditionConfig, SchedulerConfig) {
        let preset = try #require(family.preset)
        return (try JSONDecoder().decode(CLIPTextConfig.self, from: Data(preset.textEncoder.utf8)),
                try UNet2DConditionConfig(json: Data(preset.unet.utf8)),
                try SchedulerConfig.decode(json: Data(preset.scheduler.utf8)))
    }

    /// Every preset decodes with our strict decoders and is recognised as its own family.
    @Test(arguments: [ModelFamily.sd1, .sd2Base, .sd2, .sdTurbo])
    func presetsAreTheirOwnFamily(family: ModelFamily) throws {
        let (text, unet, scheduler) = try Self.configs(family)
        #expect(ModelFamily(textEncoder: text, unet: unet, scheduler: scheduler) == family)
        #expect(try JSONDecoder().decode(AutoencoderKLConfig.self, from: Data(try #require(family.preset).vae.utf8)).scalingFactor == 0.18215)
        #expect(text.hiddenSize == (family.usesOpenCLIP ? 1024 : 768) && unet.crossAttentionDim == text.hiddenSize)
        if family == .sd2 { #expect(unet.upcastAttention && unet.sampleSize == [96, 96] && scheduler.predictionType == .vPrediction) }
        if family == .sdTurbo {
            #expect(try makeScheduler(kind: SchedulerKind(defaultFor: scheduler), config: scheduler, steps: 1).timesteps == [999])
            #expect(family.defaults == GenerationDefaults(steps: 1, guidanceScale: 0))
        }
    }

    /// A checkpoint with a text encoder embedding `rows x width` under `key`, and one UNet tensor.
    static func checkpoint(key: String, width: Int) throws -> String {
        let bytes = 2 * width * 2
        let header = #"{"model.diffusion_model.conv_in.bias":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"# +
            #""\#(key)":{"dtype":"F16","shape":[2,\#(width)],"data_offsets":[4,\#(4 + bytes)]}}"#
        return try SafeTensorsTests.file(header: header, dataBytes: Array(repeating: 0, count: 4 + bytes))
    }

    /// SD 1.x and 2.x are told apart by the text encoder's width; SD 2.x variants must be named; nothing is guessed.
    @Test func singleFileFamiliesComeFromShapes() throws {
        let sd2 = try Self.checkpoint(key: "cond_stage_model.model.token_embedding.weight", width: 1024)
        let sd1 = try Self.checkpoint(key: "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", width: 768)
        let other = try Self.checkpoint(key: "cond_stage_model.model.token_embedding.weight", width: 640)
        #expect(try ModelFiles(path: sd1).family == .sd1)
        #expect(try ModelFiles(path: sd2, family: .sd2).family == .sd2)
        #expect(try ModelFiles(path: sd2, family: .sdTurbo).preset?.padToken == "!")
        for (path, family, expected) in [(sd2, nil, "--model-type"), (sd2, ModelFamily.sd1, "SD 2.x"), (sd1, .sd2, "SD 1.x"),
                                         (other, nil, "640"), (Fixtures.path("checkpoint/tiny-sd2-single.safetensors"), nil, "32")] {
            let error = #expect(throws: ModelLoadError.self) { try ModelFiles(path: path, family: family) }
            guard case let .family(_, reason)? = error else {
                Issue.record("expected a family error for \(path), got \(String(describing: error))")
                continue
            }
            #expect(reason.contains(expected), "\(reason)")
        }
    }

    /// The OpenCLIP rules: fused in_proj split in three, the last resblock and the contrastive head unclaimed.
    @Test func openCLIPNames() {
        let component = OriginalCheckpointSource.Component.openCLIPTextEncoder(resblocks: 24)
        let names = { (key: String) in OriginalCheckpointSource.diffusersNames(of: "cond_stage_model.model." + key, component: component) }
        #expect(names("transformer.resblocks.3.attn.in_proj_weight") == ["q_proj", "k_proj", "v_proj"].map { "text_model.encoder.layers.3.self_attn.\($0).weight" })
        #expect(names("transformer.resblocks.22.mlp.c_proj.bias") == ["text_model.encoder.layers.22.mlp.fc2.bias"])
        #expect(names("positional_embedding") == ["text_model.embeddings.position_embedding.weight"])
        #expect(names("transformer.resblocks.23.ln_1.weight").isEmpty)
        #expect(names("text_projection").isEmpty && names("logit_scale").isEmpty)
        #expect(OriginalCheckpointSource.diffusersNames(of: "cond_stage_model.transformer.text_model.final_layer_norm.bias", component: component).isEmpty)
    }
}
