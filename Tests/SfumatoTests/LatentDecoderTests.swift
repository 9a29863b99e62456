import Foundation
import Sfumato
import Testing

/// TAESD and tiled VAE decoding against diffusers 0.42.1 (Tests/Reference/fixtures_vae_c.py).
@Suite struct LatentDecoderTests {
    @Test func tinyAutoencoderDecodesAsDiffusers() throws {
        let taesd = try AutoencoderTiny(folder: Fixtures.path("taesd"))
        let file = try Fixtures.file("taesd/reference.safetensors")
        #expect(taesd.config.scaleFactor == 2 && taesd.config.scalingFactor == 1)
        expectClose(try taesd.decode(try file.tensor("latents")), try file.tensor("decoded"), tolerance: 1e-5, "decode")
        expectClose(try taesd.decode(try file.tensor("batch")), try file.tensor("decoded_batch"), tolerance: 1e-5, "batch of 2")
        #expect(throws: ModelInputError.self) { try taesd.decode(Tensor(zeros: [1, 3, 4, 4])) }
    }

    @Test func tinyAutoencoderRefusesWhatItCannotRun() throws {
        func config(_ json: String) throws -> AutoencoderTinyConfig { try JSONDecoder().decode(AutoencoderTinyConfig.self, from: Data(json.utf8)) }
        // Defaults: the published TAESD for SD 1.x/2.x.
        let defaults = try config("{}")
        #expect(defaults.scaleFactor == 8 && defaults.numDecoderBlocks == [3, 3, 3, 1] && defaults.latentChannels == 4)
        for bad in [#"{"act_fn": "silu"}"#, #"{"upsample_fn": "bilinear"}"#, #"{"upsampling_scaling_factor": 3}"#,
                    #"{"decoder_block_out_channels": [64, 32]}"#, #"{"decoder_block_out_channels": [64], "num_decoder_blocks": [1, 1]}"#,
                    #"{"scaling_factor": 0}"#, #"{"shift_factor": 0.1}"#, #"{"latent_channels": 0}"#] {
            #expect(throws: (any Error).self, "\(bad)") { try config(bad) }
        }
        // Weights of another shape are named, all at once.
        let weights = try Fixtures.file("taesd/diffusion_pytorch_model.safetensors")
        let wider = try config(#"{"decoder_block_out_channels": [16, 16], "num_decoder_blocks": [2, 1]}"#)
        #expect(throws: ParameterMismatch.self) { try AutoencoderTiny(config: wider, weights: weights) }
        #expect(throws: (any Error).self) { try AutoencoderTiny(folder: Fixtures.path("tiny/vae")) }
    }

    @Test(arguments: ["grid", "column", "single"])
    func tiledDecodeMatchesDiffusers(case name: String) throws {
        let vae = try AutoencoderKL(config: try AutoencoderKLConfig(contentsOf: Fixtures.path("tiny/vae/config.json")),
                                    weights: try Fixtures.file("tiny/vae/diffusion_pytorch_model.safetensors"), loadEncoder: false)
        #expect(vae.config.sampleSize == 32)
        let file = try Fixtures.file("vae_tiling/reference.safetensors")
        let latents = try file.tensor("\(name).latents")
        let tiled = try vae.decodeTiled(latents)
        expectClose(tiled, try file.tensor("\(name).tiled"), tolerance: 1e-4, "\(name) tiled")
        // Latents of one tile are decoded whole; larger ones differ from the whole decode (the seams are blended).
        let whole = try file.tensor("\(name).whole")
        if name == "single" {
            expectClose(tiled, whole, tolerance: 1e-4, "single tile")
        } else {
            #expect(maxRelativeError(tiled, whole) > 1e-3, "\(name): tiling changed nothing")
        }
    }

    @Test func tiledDecodeRefusesTilesThatDoNotAddUp() throws {
        let config = try AutoencoderKLConfig(blockOutChannels: [32, 64], layersPerBlock: 1, normNumGroups: 8, sampleSize: 36)
        let tiny = try AutoencoderKLConfig(contentsOf: Fixtures.path("tiny/vae/config.json"))
        #expect(tiny.blockOutChannels == config.blockOutChannels)
        let vae = try AutoencoderKL(config: config, weights: try Fixtures.file("tiny/vae/diffusion_pytorch_model.safetensors"))
        #expect(throws: ModelConfigError.self) { try vae.decodeTiled(Tensor(zeros: [1, 4, 40, 8])) }
        #expect(throws: (any Error).self) { try AutoencoderKLConfig(blockOutChannels: [32, 64], layersPerBlock: 1, normNumGroups: 8, sampleSize: 1) }
    }
}
