import Foundation
import Sfumato
import Testing

/// AutoencoderKL against diffusers on a tiny two-block VAE saved with save_pretrained.
@Suite struct VAETests {
    static func config() throws -> AutoencoderKLConfig { try AutoencoderKLConfig(contentsOf: Fixtures.path("tiny/vae/config.json")) }
    static func weights() throws -> SafeTensorsFile { try Fixtures.file("tiny/vae/diffusion_pytorch_model.safetensors") }
    static func reference() throws -> SafeTensorsFile { try Fixtures.file("nets/vae.safetensors") }

    @Test func readsConfig() throws {
        let config = try Self.config()
        #expect(config.blockOutChannels == [32, 64] && config.layersPerBlock == 1 && config.normNumGroups == 8)
        #expect(config.latentChannels == 4 && config.inChannels == 3 && config.outChannels == 3)
        #expect(config.scalingFactor == 0.18215 && config.midBlockAddAttention && config.useQuantConv && config.usePostQuantConv)
    }

    @Test func decodeMatchesDiffusers() throws {
        let vae = try AutoencoderKL(config: try Self.config(), weights: try Self.weights())
        let reference = try Self.reference()
        expectClose(try vae.decode(try reference.tensor("latents")), try reference.tensor("decoded"), tolerance: 1e-4, "decoded image")
    }

    @Test func encodeMatchesDiffusers() throws {
        let vae = try AutoencoderKL(config: try Self.config(), weights: try Self.weights())
        let reference = try Self.reference()
        let latents = try vae.encode(try reference.tensor("image"))
        expectClose(latents.mean, try reference.tensor("mean"), tolerance: 1e-4, "latent mean")
        expectClose(latents.standardDeviation, try reference.tensor("std"), tolerance: 1e-4, "latent std")
    }

    /// sample = mean + std * noise, the noise drawn in one call of the latents' shape.
    @Test func samplesWithTheGivenNoise() throws {
        let vae = try AutoencoderKL(config: try Self.config(), weights: try Self.weights())
        let latents = try vae.encode(try Self.reference().tensor("image"))
        var random = ConstantNoise(value: 2)
        let sample = latents.sample(using: &random)
        #expect(random.requestedShapes == [[1, 4, 16, 16]])
        let expected = zip(latents.mean.toArray(), latents.standardDeviation.toArray()).map { $0 + 2 * $1 }
        #expect(sample.toArray() == expected)
    }

    /// Text-to-image needs only the decoder: the encoder's tensors are neither loaded nor reported.
    @Test func loadsDecoderOnly() throws {
        let vae = try AutoencoderKL(config: try Self.config(), weights: try Self.weights(), loadEncoder: false)
        let reference = try Self.reference()
        expectClose(try vae.decode(try reference.tensor("latents")), try reference.tensor("decoded"), tolerance: 1e-4, "decoded image")
        #expect(throws: ModelInputError.componentNotLoaded(model: "VAE", component: "encoder")) { try vae.encode(try reference.tensor("image")) }
    }

    @Test func rejectsBadInputShapes() throws {
        let vae = try AutoencoderKL(config: try Self.config(), weights: try Self.weights())
        for shape in [[1, 3, 8, 8], [4, 8, 8], [0, 4, 8, 8], [1, 4, 0, 8]] {
            #expect(throws: ModelInputError.self, "latents \(shape)") { try vae.decode(Tensor(zeros: shape)) }
        }
        for shape in [[1, 4, 32, 32], [1, 3, 31, 32], [1, 3, 32], [1, 3, 0, 0]] {
            #expect(throws: ModelInputError.self, "image \(shape)") { try vae.encode(Tensor(zeros: shape)) }
        }
    }

    /// A config with a wider second block: every tensor of that width is listed by name.
    @Test func reportsMisshapedTensorsByName() throws {
        let wider = try AutoencoderKLConfig(blockOutChannels: [32, 48], layersPerBlock: 1, normNumGroups: 8)
        let mismatch = #expect(throws: ParameterMismatch.self) { try AutoencoderKL(config: wider, weights: try Self.weights()) }
        let names = Set(mismatch?.misshaped.map(\.name) ?? [])
        #expect(names.contains("decoder.conv_in.weight"))
        #expect(names.contains("encoder.mid_block.attentions.0.to_q.weight"))
        #expect(names.contains("encoder.down_blocks.1.resnets.0.conv_shortcut.weight"))
        #expect(!names.contains("encoder.conv_in.weight"), "the first block keeps its width")
        #expect(mismatch?.missing.isEmpty == true && mismatch?.unexpected.isEmpty == true)
    }

    @Test func reportsMissingTensor() throws {
        let weights = RenamedTensorSource(try Self.weights(), keep: { $0 != "decoder.up_blocks.0.upsamplers.0.conv.bias" })
        let mismatch = #expect(throws: ParameterMismatch.self) { try AutoencoderKL(config: try Self.config(), weights: weights) }
        #expect(mismatch?.missing.map(\.name) == ["decoder.up_blocks.0.upsamplers.0.conv.bias"])
        #expect(mismatch?.description.contains("missing: decoder.up_blocks.0.upsamplers.0.conv.bias [64]") == true)
    }

    @Test func refusesOtherBlockTypesByName() throws {
        var json = try String(contentsOfFile: Fixtures.path("tiny/vae/config.json"), encoding: .utf8)
        json = json.replacingOccurrences(of: "\"UpDecoderBlock2D\"\n", with: "\"AttnUpDecoderBlock2D\"\n")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sfumato-vae-\(UUID().uuidString).json").path
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: ModelConfigError.self) { try AutoencoderKLConfig(contentsOf: path) }
        #expect(error?.description.contains("AttnUpDecoderBlock2D") == true)
    }
}

/// Noise of one constant value that remembers which shapes were asked for.
private struct ConstantNoise: RandomSource {
    let value: Float
    var requestedShapes: [[Int]] = []

    mutating func normal(shape: [Int]) -> Tensor {
        requestedShapes.append(shape)
        return Tensor(repeating: value, shape: shape)
    }
}
