@testable import Sfumato
import Foundation
import Testing

/// UNet2DConditionModel against diffusers on tiny models stored as users' folders are
/// (config.json + fp16 diffusion_pytorch_model.safetensors), loaded through the public API.
@Suite struct UNetTests {
    /// A config.json describing a far larger UNet than its weights (`{}` is full-size SD 1.5, 3.4 GB of
    /// parameters, here against the tiny model's file) is refused naming what is missing, and the
    /// stand-ins for the missing tensors commit no memory.
    @Test func configFarLargerThanItsWeightsCommitsNoMemory() throws {
        let weights = try SafeTensorsFile(path: Fixtures.path("tiny/unet/diffusion_pytorch_model.safetensors"))
        let config = try UNet2DConditionConfig(json: Data("{}".utf8))
        let peak = ProcessMemory.peakResidentBytes
        #expect(throws: ParameterMismatch.self) { try UNet2DConditionModel(config: config, weights: weights) }
        #expect(ProcessMemory.peakResidentBytes - peak < 1 << 30)
    }

    private func load(_ folder: String) throws -> UNet2DConditionModel {
        let config = try UNet2DConditionConfig(contentsOf: Fixtures.path("\(folder)/config.json"))
        let weights = try Fixtures.file("\(folder)/diffusion_pytorch_model.safetensors")
        return try UNet2DConditionModel(config: config, weights: weights)
    }

    /// SD 1.x structure (1x1 conv projections, 2 layers per block), square and non-square latents,
    /// an early, a late and a fractional timestep.
    @Test func sd1StructureMatchesDiffusers() throws {
        let unet = try load("tiny/unet")
        let io = try Fixtures.file("nets/unet_sd1_io.safetensors")
        let context = try io.tensor("encoder_hidden_states")
        for (shape, timestep) in [("8x8", "999"), ("8x8", "1"), ("8x16", "999"), ("8x16", "1"), ("8x8", "250.75")] {
            let output = try unet(try io.tensor("sample_\(shape)"), timestep: Double(timestep)!, encoderHiddenStates: context)
            expectClose(output, try io.tensor("out_\(shape)_t\(timestep)"), tolerance: 1e-4, "UNet \(shape) t=\(timestep)")
        }
    }

    /// SD 2.x style: linear projections, per-block heads [2, 4], transformer depths [2, 1],
    /// sin-first embedding with frequency shift 1, a tall latent.
    @Test func sd2StyleMatchesDiffusers() throws {
        let unet = try load("nets/unet_sd2")
        #expect(unet.config.numAttentionHeads == [2, 4] && unet.config.useLinearProjection)
        let io = try Fixtures.file("nets/unet_sd2_io.safetensors")
        let output = try unet(try io.tensor("sample_16x8"), timestep: 500, encoderHiddenStates: try io.tensor("encoder_hidden_states"))
        expectClose(output, try io.tensor("out_16x8_t500"), tolerance: 1e-4, "UNet SD2 style")
    }

    @Test func sinusoidalEmbeddingMatchesDiffusers() throws {
        let file = try Fixtures.file("nets/timestep_embedding.safetensors")
        let timesteps = try file.tensor("timesteps").toArray()
        for (dimension, flip, shift) in [(320, true, 0.0), (32, false, 1.0), (33, true, 0.0)] {
            let features = sinusoidalTimestepEmbedding(timesteps, dimension: dimension, flipSinToCos: flip, downscaleFreqShift: shift)
            expectClose(features, try file.tensor("sinusoidal_\(dimension)_\(flip ? 1 : 0)_\(Int(shift))"), tolerance: 1e-4,
                        "sinusoidal \(dimension) flip \(flip) shift \(shift)")
        }
        let loader = ParameterLoader(source: file, component: "timestep fixture")
        let embedding = TimestepEmbedding(loader.scoped("time_embedding"), inChannels: 32, timeEmbedDim: 128, condProjDim: nil)
        try loader.finish(ignoring: { !$0.hasPrefix("time_embedding.") })
        let features = sinusoidalTimestepEmbedding(timesteps, dimension: 32, flipSinToCos: true, downscaleFreqShift: 0)
        expectClose(embedding(features, condition: nil), try file.tensor("embedded"), tolerance: 1e-4, "TimestepEmbedding")
    }

    /// diffusers' SD 1.5 unet/config.json resolves to the published architecture numbers.
    @Test func readsTheSD15Config() throws {
        let config = try UNet2DConditionConfig(json: Data(Self.sd15Config.utf8))
        #expect(config.blockOutChannels == [320, 640, 1280, 1280])
        #expect(config.numAttentionHeads == [8, 8, 8, 8])
        #expect(config.layersPerBlock == [2, 2, 2, 2] && config.transformerLayersPerBlock == [1, 1, 1, 1])
        #expect(config.downBlockTypes == [.crossAttnDownBlock2D, .crossAttnDownBlock2D, .crossAttnDownBlock2D, .downBlock2D])
        #expect(config.upBlockTypes == [.upBlock2D, .crossAttnUpBlock2D, .crossAttnUpBlock2D, .crossAttnUpBlock2D])
        #expect(config.crossAttentionDim == 768 && config.timeEmbeddingDim == 1280 && config.sampleSize == [64, 64])
        #expect(!config.useLinearProjection && config.flipSinToCos && config.freqShift == 0 && config.spatialFactor == 8)
        // Codable both ways: what we write reads back the same.
        let again = try UNet2DConditionConfig(json: try JSONEncoder().encode(config))
        #expect(again == config)
    }

    @Test(arguments: [
        ("class_embed_type", "\"timestep\""), ("addition_embed_type", "\"image\""),
        ("resnet_time_scale_shift", "\"scale_shift\""), ("num_attention_heads", "8"), ("only_cross_attention", "true"),
        ("mid_block_type", "\"UNetMidBlock2DSimpleCrossAttn\""), ("center_input_sample", "true"),
        ("down_block_types", "[\"AttnDownBlock2D\", \"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\", \"DownBlock2D\"]"),
    ])
    func refusesUnsupportedSettingsByName(key: String, value: String) throws {
        let json = Self.sd15Config.replacingOccurrences(of: "\"act_fn\": \"silu\",", with: "\"act_fn\": \"silu\", \"\(key)\": \(value),")
        let error = #expect(throws: UNetError.self) { try UNet2DConditionConfig(json: Data(json.utf8)) }
        guard case let .unsupportedConfig(reportedKey, _, _)? = error else {
            Issue.record("expected unsupportedConfig for \(key), got \(String(describing: error))")
            return
        }
        #expect(reportedKey == key)
        #expect(error?.description.contains(key) == true)
    }

    @Test func refusesInconsistentConfig() throws {
        let json = Self.sd15Config.replacingOccurrences(of: "\"norm_num_groups\": 32", with: "\"norm_num_groups\": 48")
        let error = #expect(throws: UNetError.self) { try UNet2DConditionConfig(json: Data(json.utf8)) }
        #expect(error == .invalidConfig(key: "block_out_channels", reason: "block 0 has 320 channels, not a multiple of norm_num_groups 48"))
        #expect(throws: UNetError.self) { try UNet2DConditionConfig(json: Data("{\"layers_per_block\": [2, 2]}".utf8)) }
        #expect(throws: UNetError.self) { try UNet2DConditionConfig(json: Data("not json".utf8)) }
    }

    @Test func missingTensorIsReportedByName() throws {
        let config = try UNet2DConditionConfig(contentsOf: Fixtures.path("tiny/unet/config.json"))
        let file = try Fixtures.file("tiny/unet/diffusion_pytorch_model.safetensors")
        let dropped = "down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k.weight"
        let weights = RenamedTensorSource(file, keep: { $0 != dropped })
        let mismatch = #expect(throws: ParameterMismatch.self) { try UNet2DConditionModel(config: config, weights: weights) }
        #expect(mismatch?.missing.map(\.name) == [dropped])
        #expect(mismatch?.missing.first?.shape == [32, 32])
        #expect(mismatch?.unexpected.isEmpty == true && mismatch?.misshaped.isEmpty == true)
    }

    @Test func refusesInputsThatDoNotFit() throws {
        let unet = try load("tiny/unet")
        let context = Tensor(zeros: [2, 77, 32])
        #expect(throws: UNetError.self) { try unet(Tensor(zeros: [2, 4, 7, 8]), timestep: 1, encoderHiddenStates: context) }
        #expect(throws: UNetError.self) { try unet(Tensor(zeros: [2, 3, 8, 8]), timestep: 1, encoderHiddenStates: context) }
        #expect(throws: UNetError.self) { try unet(Tensor(zeros: [1, 4, 8, 8]), timestep: 1, encoderHiddenStates: context) }
        #expect(throws: UNetError.self) { try unet(Tensor(zeros: [2, 4, 8, 8]), timestep: 1, encoderHiddenStates: Tensor(zeros: [2, 77, 16])) }
        #expect(throws: UNetError.self) { try unet(Tensor(zeros: [2, 4, 8, 8]), timestep: .nan, encoderHiddenStates: context) }
    }

    /// runwayml/stable-diffusion-v1-5 unet/config.json as published.
    static let sd15Config = """
    {
      "_class_name": "UNet2DConditionModel",
      "_diffusers_version": "0.6.0",
      "act_fn": "silu",
      "attention_head_dim": 8,
      "block_out_channels": [320, 640, 1280, 1280],
      "center_input_sample": false,
      "cross_attention_dim": 768,
      "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
      "downsample_padding": 1,
      "flip_sin_to_cos": true,
      "freq_shift": 0,
      "in_channels": 4,
      "layers_per_block": 2,
      "mid_block_scale_factor": 1,
      "norm_eps": 1e-05,
      "norm_num_groups": 32,
      "out_channels": 4,
      "sample_size": 64,
      "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
    }
    """
}
