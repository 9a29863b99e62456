import ArgumentParser
import Foundation
import Sfumato

/// `sfumato noise`: the forward process of diffusion applied to a picture, one PNG per timestep.
struct NoiseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "noise",
        abstract: "Show the forward process q(x_t | x_0) on a PNG: one image per timestep and a labelled contact sheet.",
        discussion: """
        x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps with the model's noise schedule (abar_t from its \
        scheduler config) and one seeded eps for all timesteps, as diffusers' DDPMScheduler.add_noise. \
        In pixel space x_0 is the picture in [-1, 1]; with --latent it is the VAE latents (the encoder's \
        mean times the scaling factor), and each x_t is decoded to a picture.
        """
    )

    @Argument(help: "The PNG (sides multiples of 8, or give --resize).")
    var image: String

    @Option(help: "Comma-separated train timesteps, 0 (clean) to num_train_timesteps - 1 (pure noise).")
    var timesteps = "0,50,100,250,500,999"

    @Flag(help: "Noise the VAE latents and decode them, instead of the pixels.")
    var latent = false

    @Option(help: "The seed of the noise.")
    var seed: UInt64 = 0

    @Option(help: "A diffusers model folder or a single-file .safetensors checkpoint (default: the embedded model).")
    var model: String?

    @Option(help: "Tokenizer folder, for single-file checkpoints.")
    var tokenizer: String?

    @Flag(help: "Resize the picture (Lanczos) to the multiples of 8 below its sides.")
    var resize = false

    @Option(name: .shortAndLong, help: "Folder for t-NNNN.png and contact-sheet.png (created if missing).")
    var output = "noise"

    var parsedTimesteps: [Int] { timesteps.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func validate() throws {
        let parts = timesteps.split(separator: ",", omittingEmptySubsequences: false)
        guard !parts.isEmpty, parsedTimesteps.count == parts.count, parsedTimesteps.allSatisfy({ $0 >= 0 }) else {
            throw ValidationError("--timesteps must be comma-separated whole numbers >= 0, not '\(timesteps)'")
        }
        try checkWritableFolder(output, option: "--output", create: true)
    }

    func run() throws {
        let picture = try readSizedPNG(image, width: nil, height: nil, resize: resize).sized
        let pipeline = try StableDiffusionPipeline(files: try ModelFiles(path: model ?? DefaultModel.path(), tokenizer: tokenizer))
        // Every timestep checked before the first file is written.
        let last = pipeline.schedulerConfig.numTrainTimesteps - 1
        if let bad = parsedTimesteps.first(where: { $0 > last }) {
            throw InputError("--timesteps: \(bad) is past this model's last train timestep, \(last)")
        }
        let clean = latent ? try pipeline.encodeMeanLatents(picture) : picture.normalizedTensor()
        var random = TorchRandom(seed: seed)
        let noise = random.normal(shape: clean.shape)
        var entries: [(label: String, image: RGBImage)] = []
        for timestep in parsedTimesteps {
            let noised = try pipeline.schedulerConfig.forwardProcess(clean, noise: noise, timestep: timestep)
            let frame = latent ? try pipeline.decode(noised) : try RGBImage(decoded: noised)
            let path = URL(fileURLWithPath: output).appendingPathComponent(String(format: "t-%04d.png", timestep)).path
            try writePNG(frame, to: path)
            entries.append((label: "t=\(timestep)", image: frame))
        }
        let sheet = URL(fileURLWithPath: output).appendingPathComponent("contact-sheet.png").path
        try writePNG(try contactSheet(entries, columns: min(entries.count, 6)), to: sheet)
        print("wrote \(entries.count) images and \(sheet)")
    }
}

/// `sfumato latents`: what the VAE makes of a picture.
struct LatentsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latents",
        abstract: "Encode a PNG with the VAE: its latent channels as grayscale PNGs, the decoded round trip and its PSNR.",
        discussion: """
        The latents are the encoder's mean times the scaling factor (what a diffusion model works on): \
        for SD, 4 channels at 1/8 of the width and height, 48 times fewer values than the RGB pixels. \
        Each channel is stretched from its minimum (black) to its maximum (white) and enlarged to the \
        picture's size; decoded.png is the decoder's picture of the same latents.
        """
    )

    @Argument(help: "The PNG (sides multiples of 8, or give --resize).")
    var image: String

    @Option(help: "A diffusers model folder or a single-file .safetensors checkpoint (default: the embedded model).")
    var model: String?

    @Option(help: "Tokenizer folder, for single-file checkpoints.")
    var tokenizer: String?

    @Flag(help: "Resize the picture (Lanczos) to the multiples of 8 below its sides.")
    var resize = false

    @Option(name: .shortAndLong, help: "Folder for channel-N.png and decoded.png (created if missing).")
    var output = "latents"

    func validate() throws { try checkWritableFolder(output, option: "--output", create: true) }

    func run() throws {
        let picture = try readSizedPNG(image, width: nil, height: nil, resize: resize).sized
        let pipeline = try StableDiffusionPipeline(files: try ModelFiles(path: model ?? DefaultModel.path(), tokenizer: tokenizer))
        let latents = try pipeline.encodeMeanLatents(picture)
        let folder = URL(fileURLWithPath: output)
        for (channel, map) in try latentChannelImages(latents, scale: pipeline.vaeScaleFactor).enumerated() {
            try writePNG(map, to: folder.appendingPathComponent("channel-\(channel).png").path)
        }
        let decoded = try pipeline.decode(latents)
        try writePNG(decoded, to: folder.appendingPathComponent("decoded.png").path)
        let shape = latents.shape
        let ratio = Double(3 * picture.width * picture.height) / Double(latents.count)
        print("\(shape[1])x\(shape[2])x\(shape[3]) latents for 3x\(picture.height)x\(picture.width) pixels: "
              + String(format: "%.0fx fewer values; round trip PSNR %.2f dB", ratio, try peakSignalToNoiseRatio(picture, decoded)))
        print("wrote \(shape[1]) channel images and decoded.png to \(output)")
    }
}
