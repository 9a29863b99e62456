import Foundation
import Sfumato
import Testing

/// The single-file rule table against every SD 1.5 key, as diffusers' own converter pairs them
/// (Tests/Reference/fixtures_checkpoint_mapping.py).
@Suite struct CheckpointMappingTests {
    static func table() throws -> [String: [String: String]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("checkpoint/sd15_names.json")))
        return try JSONDecoder().decode([String: [String: String]].self, from: data)
    }

    @Test(arguments: ["unet", "vae", "text_encoder"])
    func mapsEverySD15Key(component: String) throws {
        let pairs = try #require(try Self.table()[component])
        #expect(pairs.count > 190)
        let kind: OriginalCheckpointSource.Component = switch component {
        case "unet": .unet(layersPerBlock: 2)
        case "vae": .vae(blockCount: 4)
        default: .textEncoder
        }
        var wrong: [String] = []
        for (original, expected) in pairs.sorted(by: { $0.key < $1.key }) {
            let mapped = OriginalCheckpointSource.diffusersName(of: original, component: kind)
            if mapped != expected { wrong.append("\(original) -> \(mapped ?? "nil"), expected \(expected)") }
        }
        #expect(wrong.isEmpty, "\(wrong.count) wrong, e.g. \(wrong.prefix(5))")
    }

    @Test func otherComponentsAndEMAKeysAreNotClaimed() {
        #expect(OriginalCheckpointSource.diffusersName(of: "model_ema.diffusion_modeltime_embed0weight", component: .unet(layersPerBlock: 2)) == nil)
        #expect(OriginalCheckpointSource.diffusersName(of: "first_stage_model.encoder.conv_in.weight", component: .unet(layersPerBlock: 2)) == nil)
        #expect(OriginalCheckpointSource.diffusersName(of: "model.diffusion_model.conv_in.weight", component: .vae(blockCount: 4)) == nil)
    }
}

/// The tiny model as one original-layout checkpoint (Tests/Reference/fixtures_pipeline.py) must give
/// networks identical to those read from its diffusers folder.
@Suite struct SingleFileCheckpointTests {
    @Test func loadsTheSameNetworksAsTheFolder() throws {
        let file = try Fixtures.file("checkpoint/tiny-single.safetensors")
        #expect(OriginalCheckpointSource.isOriginalCheckpoint(file))
        let textConfig = try CLIPTextConfig(contentsOf: Fixtures.path("tiny/text_encoder/config.json"))
        let unetConfig = try UNet2DConditionConfig(contentsOf: Fixtures.path("tiny/unet/config.json"))
        let vaeConfig = try AutoencoderKLConfig(contentsOf: Fixtures.path("tiny/vae/config.json"))

        let ids: [[Int32]] = [[572, 320, 557, 70] + Array(repeating: 573, count: 73)]
        let fromFile = try CLIPTextModel(config: textConfig, weights: OriginalCheckpointSource(file: file, component: .textEncoder))
        let fromFolder = try CLIPTextModel(config: textConfig, weights: try Fixtures.file("tiny/text_encoder/model.safetensors"))
        let states = try fromFolder(ids)
        #expect(try fromFile(ids).toArray() == states.toArray())

        var random = TorchRandom(seed: 3)
        let sample = random.normal(shape: [1, 4, 8, 8])
        let unetFile = try UNet2DConditionModel(
            config: unetConfig, weights: OriginalCheckpointSource(file: file, component: .unet(layersPerBlock: unetConfig.layersPerBlock[0])))
        let unetFolder = try UNet2DConditionModel(config: unetConfig, weights: try Fixtures.file("tiny/unet/diffusion_pytorch_model.safetensors"))
        #expect(try unetFile(sample, timestep: 500, encoderHiddenStates: states).toArray()
            == unetFolder(sample, timestep: 500, encoderHiddenStates: states).toArray())

        let vaeFile = try AutoencoderKL(
            config: vaeConfig, weights: OriginalCheckpointSource(file: file, component: .vae(blockCount: vaeConfig.blockOutChannels.count)))
        let vaeFolder = try AutoencoderKL(config: vaeConfig, weights: try Fixtures.file("tiny/vae/diffusion_pytorch_model.safetensors"))
        #expect(try vaeFile.decode(sample).toArray() == vaeFolder.decode(sample).toArray())
        let image = random.normal(shape: [1, 3, 16, 16])
        #expect(try vaeFile.encode(image).mean.toArray() == vaeFolder.encode(image).mean.toArray())
    }

    /// A key in the UNet's part of the file that no rule maps (here an LCM condition projection) is
    /// reported as unexpected, not dropped; a VAE's training-loss tensors are not the VAE's.
    @Test func unmappedKeysAreReported() throws {
        let original = try Fixtures.file("checkpoint/tiny-single.safetensors")
        var tensors = try original.names.map { ($0, try original.tensor($0)) }
        tensors.append(("model.diffusion_model.time_embed.cond_proj.weight", Tensor(shape: [2, 2], values: [1, 2, 3, 4])))
        tensors.append(("first_stage_model.loss.logvar", Tensor(shape: [1], values: [0])))
        var header: [String] = [], data: [UInt8] = []
        for (name, tensor) in tensors {
            let bytes = SafeTensorsTests.float32Bytes(tensor.toArray())
            header.append("\"\(name)\":{\"dtype\":\"F32\",\"shape\":\(tensor.shape),\"data_offsets\":[\(data.count),\(data.count + bytes.count)]}")
            data += bytes
        }
        let path = try SafeTensorsTests.file(header: "{" + header.joined(separator: ",") + "}", dataBytes: data)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try SafeTensorsFile(path: path)

        let unetConfig = try UNet2DConditionConfig(contentsOf: Fixtures.path("tiny/unet/config.json"))
        do {
            _ = try UNet2DConditionModel(config: unetConfig, weights: OriginalCheckpointSource(file: file, component: .unet(layersPerBlock: unetConfig.layersPerBlock[0])))
            Issue.record("a UNet key without a rule must not be dropped silently")
        } catch {
            #expect(error.description.contains("unexpected: model.diffusion_model.time_embed.cond_proj.weight [2, 2]"))
        }
        let vaeConfig = try AutoencoderKLConfig(contentsOf: Fixtures.path("tiny/vae/config.json"))
        _ = try AutoencoderKL(config: vaeConfig, weights: OriginalCheckpointSource(file: file, component: .vae(blockCount: vaeConfig.blockOutChannels.count)))
    }

    /// A checkpoint that does not fit the configuration: one error naming the tensors, not a crash.
    @Test func misfitIsNamed() throws {
        let file = try Fixtures.file("checkpoint/tiny-single.safetensors")
        // Reading the tiny checkpoint with SD 1.5's configuration: every shape is wrong.
        let sd15 = try UNet2DConditionConfig(json: Data(#"{"block_out_channels": [320, 640, 1280, 1280], "cross_attention_dim": 768, "attention_head_dim": 8, "sample_size": 64}"#.utf8))
        do {
            _ = try UNet2DConditionModel(config: sd15, weights: OriginalCheckpointSource(file: file, component: .unet(layersPerBlock: 2)))
            Issue.record("loading the tiny checkpoint as SD 1.5 must fail")
        } catch {
            #expect(error.description.contains("conv_in.weight"))
        }
    }
}
