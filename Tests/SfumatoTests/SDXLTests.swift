import Foundation
@testable import Sfumato
import Testing

/// SDXL against diffusers on a tiny model (Tests/Reference/fixtures_sdxl.py): the UNet with its added
/// conditioning, both text encoders, and StableDiffusionXLPipeline's images.
@Suite struct SDXLTests {
    static func unet() throws -> UNet2DConditionModel {
        let config = try UNet2DConditionConfig(contentsOf: Fixtures.path("tiny-sdxl/unet/config.json"))
        return try UNet2DConditionModel(config: config, weights: try Fixtures.file("tiny-sdxl/unet/diffusion_pytorch_model.safetensors"))
    }

    /// No attention in the first down block, transformer depths per block, "text_time" added conditioning.
    @Test func unetMatchesDiffusers() throws {
        let unet = try Self.unet()
        let config = unet.config
        #expect(config.additionEmbedType == .textTime && config.additionTimeEmbedDim == 8 && config.projectionClassEmbeddingsInputDim == 64)
        #expect(config.transformerLayersPerBlock == [1, 1, 2] && config.downBlockTypes.first == .downBlock2D)
        #expect(unet.mid_block.attentions[0].transformer_blocks.count == 2 && unet.up_blocks[0].attentions[0].transformer_blocks.count == 2)
        let file = try Fixtures.file("sdxl/networks.safetensors")
        let conditions = UNetAddedConditions(textEmbeds: try file.tensor("text_encoder_2.pooled"), timeIds: try file.tensor("unet.time_ids"))
        let output = try unet(try file.tensor("unet.sample"), timestep: Double(try file.tensor("unet.timestep")[flat: 0]),
                              encoderHiddenStates: try file.tensor("unet.encoder_hidden_states"), addedConditions: conditions)
        expectClose(output, try file.tensor("unet.output"), tolerance: 1e-4, "SDXL UNet")
    }

    /// The added conditioning is required by an SDXL UNet, refused by others, and checked against the config.
    @Test func addedConditionsAreChecked() throws {
        let unet = try Self.unet()
        let file = try Fixtures.file("sdxl/networks.safetensors")
        let (sample, states) = (try file.tensor("unet.sample"), try file.tensor("unet.encoder_hidden_states"))
        let pooled = try file.tensor("text_encoder_2.pooled")
        #expect(throws: UNetError.self) { try unet(sample, timestep: 1, encoderHiddenStates: states) }
        let fiveIDs = UNetAddedConditions(textEmbeds: pooled, timeIds: Tensor(zeros: [2, 5]))
        #expect(throws: UNetError.self) { try unet(sample, timestep: 1, encoderHiddenStates: states, addedConditions: fiveIDs) }
        #expect(UNetAddedConditions.sizeConditioning(width: 32, height: 24).toArray() == [24, 32, 0, 0, 24, 32])
        // A config naming text_time without its widths, or another added embedding, is refused.
        #expect(throws: UNetError.self) { try UNet2DConditionConfig(json: Data(#"{"addition_embed_type": "text_time"}"#.utf8)) }
        #expect(throws: UNetError.self) { try UNet2DConditionConfig(json: Data(#"{"addition_embed_type": "image"}"#.utf8)) }
    }

    // MARK: - Text encoders

    static let folder = Result { try StableDiffusionPipeline(files: try ModelFiles(path: Fixtures.path("tiny-sdxl"))) }
    static let singleFile = Result {
        try StableDiffusionPipeline(files: try ModelFiles(path: Fixtures.path("checkpoint/tiny-sdxl-single.safetensors"),
                                                          configuration: Fixtures.path("tiny-sdxl")))
    }

    static func ids(_ tensor: Tensor) -> [[Int32]] { SD2Tests.ids(tensor) }

    /// The two tokenizers: the same tokens, padded with the end token and with "!".
    @Test func tokenizersMatchTransformers() throws {
        let pipeline = try Self.folder.get()
        let file = try Fixtures.file("sdxl/networks.safetensors")
        let prompts = try #require(file.metadata["prompts"]).split(separator: "|").map(String.init)
        let second = try #require(pipeline.tokenizer2)
        #expect(prompts.map { pipeline.tokenizer.encode($0) } == Self.ids(try file.tensor("input_ids")))
        #expect(prompts.map { second.encode($0) } == Self.ids(try file.tensor("input_ids_2")))
        #expect(second.padID == 0 && pipeline.tokenizer.padID != 0)
    }

    /// Penultimate hidden states without the final layer norm (and one layer earlier for clip skip 2), and
    /// the second encoder's projected pooled output, from the folder and from the single file.
    @Test(arguments: ["folder", "single file"])
    func textEncodersMatchTransformers(source: String) throws {
        let pipeline = try (source == "folder" ? Self.folder : Self.singleFile).get()
        let file = try Fixtures.file("sdxl/networks.safetensors")
        let (ids, ids2) = (Self.ids(try file.tensor("input_ids")), Self.ids(try file.tensor("input_ids_2")))
        expectClose(try pipeline.textEncoder.penultimateHiddenStates(ids), try file.tensor("text_encoder.penultimate"), tolerance: 1e-4,
                    "\(source) text encoder")
        expectClose(try pipeline.textEncoder.penultimateHiddenStates(ids, clipSkip: 2), try file.tensor("text_encoder.skip2"),
                    tolerance: 1e-4, "\(source) text encoder, clip skip 2")
        let second = try #require(pipeline.textEncoder2)
        #expect(second.config.eosTokenID == 2 && second.config.projectionDim == 16)
        let (states, pooled) = try second(ids2)
        expectClose(states, try file.tensor("text_encoder_2.penultimate"), tolerance: 1e-4, "\(source) text encoder 2")
        expectClose(pooled, try file.tensor("text_encoder_2.pooled"), tolerance: 1e-4, "\(source) pooled")
        #expect(pipeline.maximumClipSkip == 2)
        #expect(throws: ModelInputError.self) { try second(ids2, clipSkip: 3) }
    }

    /// The pipeline's conditioning: both encoders joined along the features, and zeros for an empty negative prompt.
    @Test func promptConditioning() throws {
        let pipeline = try Self.folder.get()
        let file = try Fixtures.file("sdxl/networks.safetensors")
        let prompts = try #require(file.metadata["prompts"]).split(separator: "|").map(String.init)
        let conditioning = try pipeline.encodePrompts(prompts)
        expectClose(concat(conditioning.map(\.states), axis: 0), try file.tensor("unet.encoder_hidden_states"), tolerance: 1e-4, "states")
        expectClose(concat(conditioning.compactMap(\.pooled), axis: 0), try file.tensor("text_encoder_2.pooled"), tolerance: 1e-4, "pooled")
        #expect(pipeline.forceZerosForEmptyPrompt)
        let zeroed = try pipeline.encodePrompts(["", prompts[0]], zeroingEmptyNegative: true)
        #expect(zeroed[0].states.shape == [1, 77, 32] && zeroed[0].states.toArray().allSatisfy { $0 == 0 })
        #expect(zeroed[0].pooled?.toArray() == Array(repeating: 0, count: 16))
        // Only the negative prompt is zeroed: an empty prompt is encoded.
        let empty = try pipeline.encodePrompts(["", ""], zeroingEmptyNegative: true)
        #expect(empty.count == 2 && empty[0].states.toArray().allSatisfy { $0 == 0 } && empty[1].states.toArray().contains { $0 != 0 })
        #expect(try pipeline.encodePrompts(["", ""])[0].states.toArray().contains { $0 != 0 })
    }

    // MARK: - Pipeline

    static func request(_ name: String) throws -> (GenerationRequest, SafeTensorsFile) {
        let file = try Fixtures.file("sdxl/\(name).safetensors")
        var request = try SD2Tests.request(file, scheduler: .euler)
        request.scheduler = nil
        return (request, file)
    }

    /// StableDiffusionXLPipeline's images: a negative prompt, and none (force_zeros_for_empty_prompt).
    @Test(arguments: ["euler", "zeros"], ["folder", "single file"])
    func drawsWhatDiffusersDraws(name: String, source: String) throws {
        let pipeline = try (source == "folder" ? Self.folder : Self.singleFile).get()
        #expect(pipeline.family == .sdxl && pipeline.vae.config.scalingFactor == 0.13025)
        let (request, file) = try Self.request(name)
        try SD2Tests.expectImage(pipeline, request, file, "\(source) \(name)")
    }

    /// SDXL-Turbo's recipe: Euler a with trailing spacing, one step, no guidance.
    @Test func turboDrawsWhatDiffusersDraws() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sfumato-sdxl-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: Fixtures.root.appendingPathComponent("tiny-sdxl"), to: folder)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(try #require(ModelFamily.sdxlTurbo.preset).scheduler.utf8).write(to: folder.appendingPathComponent("scheduler/scheduler_config.json"))
        let pipeline = try StableDiffusionPipeline(files: try ModelFiles(path: folder.path))
        let (request, file) = try Self.request("turbo")
        #expect(try makeScheduler(kind: SchedulerKind(defaultFor: pipeline.schedulerConfig), config: pipeline.schedulerConfig,
                                  steps: request.steps).timesteps == [999])
        try SD2Tests.expectImage(pipeline, request, file, "turbo")
    }

    /// The single file's networks are the folder's, bit for bit (the UNet is fp16 in both).
    @Test func singleFileEqualsFolder() throws {
        let (folder, single) = (try Self.folder.get(), try Self.singleFile.get())
        let file = try Fixtures.file("sdxl/networks.safetensors")
        let ids2 = Self.ids(try file.tensor("input_ids_2"))
        #expect(try single.textEncoder2?(ids2).pooled.toArray() == folder.textEncoder2?(ids2).pooled.toArray())
        let conditions = UNetAddedConditions(textEmbeds: try file.tensor("text_encoder_2.pooled"), timeIds: try file.tensor("unet.time_ids"))
        let (sample, states) = (try file.tensor("unet.sample"), try file.tensor("unet.encoder_hidden_states"))
        #expect(try single.unet(sample, timestep: 10, encoderHiddenStates: states, addedConditions: conditions).toArray()
            == folder.unet(sample, timestep: 10, encoderHiddenStates: states, addedConditions: conditions).toArray())
    }

    // MARK: - Families and single files

    /// Both presets decode with our strict decoders, fit together, and are recognised as their own family.
    @Test(arguments: [ModelFamily.sdxl, .sdxlTurbo])
    func presetsAreTheirOwnFamily(family: ModelFamily) throws {
        let preset = try #require(family.preset)
        let (text, unet, scheduler) = try SD2Tests.configs(family)
        let text2 = try JSONDecoder().decode(CLIPTextConfig.self, from: Data(try #require(preset.textEncoder2).utf8))
        #expect(ModelFamily(textEncoder: text, unet: unet, scheduler: scheduler) == family)
        #expect(try UNet2DConditionConfig(json: try JSONEncoder().encode(unet)) == unet)
        try StableDiffusionPipeline.checkTextConditioning(unet: unet, first: text, second: text2, model: "preset")
        #expect(try JSONDecoder().decode(AutoencoderKLConfig.self, from: Data(preset.vae.utf8)).scalingFactor == 0.13025)
        #expect(unet.transformerLayersPerBlock == [1, 2, 10] && text2.numHiddenLayers == 32 && text2.projectionDim == 1280)
        if family == .sdxlTurbo {
            #expect(unet.sampleSize == [64, 64] && family.defaults == GenerationDefaults(steps: 1, guidanceScale: 0))
            #expect(try makeScheduler(kind: SchedulerKind(defaultFor: scheduler), config: scheduler, steps: 1).timesteps == [999])
        } else {
            #expect(unet.sampleSize == [128, 128] && family.defaults == GenerationDefaults(steps: 25, guidanceScale: 5))
        }
    }

    /// SGM names: conditioner.embedders.0 (CLIP) and .1 (OpenCLIP with every layer and the transposed projection), label_emb.
    @Test func sdxlNames() throws {
        let names = { (key: String, component: OriginalCheckpointSource.Component) in OriginalCheckpointSource.diffusersNames(of: key, component: component) }
        #expect(names("conditioner.embedders.0.transformer.text_model.encoder.layers.11.mlp.fc1.bias", .sdxlTextEncoder)
            == ["text_model.encoder.layers.11.mlp.fc1.bias"])
        #expect(names("conditioner.embedders.1.model.transformer.resblocks.31.ln_1.weight", .sdxlOpenCLIPTextEncoder)
            == ["text_model.encoder.layers.31.layer_norm1.weight"])
        #expect(names("conditioner.embedders.1.model.text_projection", .sdxlOpenCLIPTextEncoder) == ["text_projection.weight"])
        #expect(names("conditioner.embedders.1.model.logit_scale", .sdxlOpenCLIPTextEncoder).isEmpty)
        #expect(names("model.diffusion_model.label_emb.0.2.weight", .unet(layersPerBlock: 2)) == ["add_embedding.linear_2.weight"])
        let file = try Fixtures.file("checkpoint/tiny-sdxl-single.safetensors")
        let source = OriginalCheckpointSource(file: file, component: .sdxlOpenCLIPTextEncoder)
        #expect(source.shape(of: "text_projection.weight") == [16, 16])
        let transposed = try file.tensor("conditioner.embedders.1.model.text_projection")
        let weight = try source.tensor("text_projection.weight")
        #expect(weight[flat: 1] == transposed[flat: 16] && weight[flat: 16] == transposed[flat: 1])
        // Told from its tensors; only an SDXL family may be named for it.
        #expect(try ModelFiles(path: file.path, tokenizer: Fixtures.path("tiny-sdxl/tokenizer")).family == .sdxl)
        #expect(throws: ModelLoadError.self) { try ModelFiles(path: file.path, family: .sd2) }
    }
}
