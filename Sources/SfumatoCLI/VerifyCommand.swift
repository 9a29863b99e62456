import ArgumentParser
import Foundation
import Sfumato

/// `make verify-full`: our networks against PyTorch's outputs on the same full-size weights.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Compare the networks with a PyTorch reference (written by Tests/Reference/verify_full.py).",
        discussion: "Prints max|ours - torch| / max|torch| per network; exits 1 when one is above the tolerance."
    )

    @Option(help: "A diffusers folder or single-file checkpoint.")
    var model: String

    @Option(help: "Tokenizer folder, for single-file checkpoints.")
    var tokenizer: String?

    @Option(help: "Model family of a single-file checkpoint (SD 2.x files need it): \(ModelFamily.allCases.map(\.rawValue).joined(separator: ", ")).")
    var modelType: ModelFamily?

    @Option(help: "Single files: a diffusers folder with the model's config.json files, instead of the family's.")
    var modelConfig: String?

    @Option(help: "Reference safetensors with inputs and torch outputs.")
    var reference: String

    @Option(help: "Largest accepted relative error.")
    var tolerance: Float = 1e-3

    func run() throws {
        let start = Date()
        let pipeline = try StableDiffusionPipeline(files: try ModelFiles(path: model, tokenizer: tokenizer, family: modelType,
                                                                               configuration: modelConfig))
        print("loaded \(model) in " + String(format: "%.1f s", Date().timeIntervalSince(start)))
        let file = try SafeTensorsFile(path: reference)
        var worst: Float = 0

        func report(_ name: String, _ ours: Tensor, _ expected: Tensor, seconds: Double) {
            let error = maxRelativeError(ours, expected)
            worst = max(worst, error.isNaN ? .infinity : error)
            let label = name.padding(toLength: 28, withPad: " ", startingAt: 0)
            print(label + String(format: " relative error %.3e   (%.2f s)", error, seconds))
        }
        func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
            let start = Date()
            let result = try body()
            return (result, Date().timeIntervalSince(start))
        }

        let ids = try file.tensor("text_encoder.input_ids")
        let rows = (0..<ids.shape[0]).map { row in (0..<ids.shape[1]).map { Int32(ids[flat: row * ids.shape[1] + $0]) } }
        if let second = pipeline.textEncoder2 {
            // SDXL: both encoders' penultimate states and the pooled projection.
            let (states, textSeconds) = try timed { try pipeline.textEncoder.penultimateHiddenStates(rows) }
            report("text encoder 2x77", states, try file.tensor("text_encoder.output"), seconds: textSeconds)
            let ids2 = try file.tensor("text_encoder_2.input_ids")
            let rows2 = (0..<ids2.shape[0]).map { row in (0..<ids2.shape[1]).map { Int32(ids2[flat: row * ids2.shape[1] + $0]) } }
            let (encoded, seconds2) = try timed { try second(rows2) }
            report("text encoder 2 2x77", encoded.hiddenStates, try file.tensor("text_encoder_2.output"), seconds: seconds2)
            report("text encoder 2 pooled", encoded.pooled, try file.tensor("text_encoder_2.pooled"), seconds: 0)
        } else {
            let (states, textSeconds) = try timed { try pipeline.textEncoder(rows) }
            report("text encoder 2x77", states, try file.tensor("text_encoder.output"), seconds: textSeconds)
        }

        for size in [32, 64] where file.entries["unet\(size).sample"] != nil {
            let sample = try file.tensor("unet\(size).sample")
            let timestep = Double(try file.tensor("unet\(size).timestep")[flat: 0])
            let context = try file.tensor("unet\(size).encoder_hidden_states")
            let added = try file.entries["unet\(size).text_embeds"].map { _ in
                UNetAddedConditions(textEmbeds: try file.tensor("unet\(size).text_embeds"), timeIds: try file.tensor("unet\(size).time_ids"))
            }
            let (output, seconds) = try timed {
                try pipeline.unet(sample, timestep: timestep, encoderHiddenStates: context, addedConditions: added)
            }
            report("UNet batch 2 at \(size)x\(size)", output, try file.tensor("unet\(size).output"), seconds: seconds)
        }

        let latents = try file.tensor("vae.latents")
        let (image, vaeSeconds) = try timed { try pipeline.vae.decode(latents) }
        report("VAE decode \(latents.shape[2])x\(latents.shape[3])", image, try file.tensor("vae.output"), seconds: vaeSeconds)

        let pixels = try file.tensor("vae_encoder.image")
        let (posterior, encodeSeconds) = try timed { try pipeline.vae.encode(pixels) }
        let side = "\(pixels.shape[2])x\(pixels.shape[3])"
        report("VAE encode \(side) mean", posterior.mean, try file.tensor("vae_encoder.mean"), seconds: encodeSeconds)
        report("VAE encode \(side) std", posterior.standardDeviation, try file.tensor("vae_encoder.std"), seconds: 0)

        guard worst <= tolerance else {
            print("FAILED: worst relative error \(worst) is above \(tolerance)")
            throw ExitCode(1)
        }
        print("all within \(tolerance)")
    }
}
