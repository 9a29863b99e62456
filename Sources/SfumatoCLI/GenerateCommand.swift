import ArgumentParser
import Foundation
import Sfumato

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Draw an image from a text prompt and save it as a PNG with its generation parameters.",
        discussion: """
        Without --model, the embedded default model in Models/ is used. A model is a diffusers folder \
        (model_index.json, text_encoder/, tokenizer/, unet/, vae/, scheduler/) or a single-file SD 1.x or 2.x \
        .safetensors checkpoint (give --tokenizer, or put a tokenizer/ folder beside it; SD 2.x files also need \
        --model-type, since their 512 and 768 variants hold the same tensors).
        Steps, guidance and scheduler not given come from the model (SD-Turbo: 1 step without guidance; \
        LCM: 4 steps), and the choice is printed.
        The same model, prompt, negative prompt, seed, scheduler, steps, guidance and size give the image \
        diffusers gives.
        Prompts use AUTOMATIC1111's syntax: (word) and [word] weigh a word by 1.1 and 1/1.1, (word:1.5) by \
        1.5, \\( \\) \\[ \\] are literal brackets, BREAK starts a new chunk, and prompts longer than 75 \
        tokens are encoded in chunks of 75. A prompt without any of this is encoded as diffusers encodes it.
        """
    )

    @OptionGroup var options: GenerationOptions

    func run() throws { try options.draw(initImage: nil, strength: 1) }
}

struct ImageToImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "img2img",
        abstract: "Redraw a PNG from a text prompt (image to image) and save it with its generation parameters.",
        discussion: """
        The init image is encoded by the VAE, noised to the level --strength gives and denoised for the last \
        int(steps * strength) steps, as diffusers' StableDiffusionImg2ImgPipeline does for the same seed. \
        \(InitImageOptions.sizeRules) Every other option is generate's.
        """
    )

    @OptionGroup var image: InitImageOptions

    @Option(help: "How much to change it, 0...1: 1 starts from pure noise, 0.3 keeps most of the picture.")
    var strength = 0.8

    @OptionGroup var options: GenerationOptions

    func validate() throws { try checkStrength(strength, steps: options.steps) }

    func run() throws { try options.draw(initImage: try image.load(options).sized, strength: strength) }
}

struct InpaintCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inpaint",
        abstract: "Redraw the masked part of a PNG from a text prompt and save it with its generation parameters.",
        discussion: """
        The mask is a PNG of the init image's size: light (at least half gray) where the picture is redrawn, \
        dark where it is kept. Inpainting models (a UNet with 9 input channels) see the mask and the masked \
        picture, as diffusers' StableDiffusionInpaintPipeline runs them; ordinary models keep the unmasked \
        part by blending the noised init latents back in after every step, as that pipeline does for them. \
        The same seed gives diffusers' image. \(InitImageOptions.sizeRules) Every other option is generate's.
        """
    )

    @OptionGroup var image: InitImageOptions

    @Option(help: "The mask PNG: light where the picture is redrawn, dark where it is kept.")
    var mask: String

    @Option(help: "How much to change the masked part, 0...1 (1, the default: from pure noise).")
    var strength = 1.0

    @OptionGroup var options: GenerationOptions

    func validate() throws { try checkStrength(strength, steps: options.steps) }

    func run() throws {
        let (original, picture) = try image.load(options)
        let maskImage = try readPNG(path: mask)
        guard maskImage.width == original.width, maskImage.height == original.height else {
            throw InputError("\(mask) is \(maskImage.width)x\(maskImage.height) but the init image is "
                                  + "\(original.width)x\(original.height); the mask must have the init image's size")
        }
        // Resized with the picture (Lanczos, then binarized by the pipeline, as diffusers' mask processor).
        try options.draw(initImage: picture, strength: strength,
                         mask: try maskImage.resized(width: picture.width, height: picture.height))
    }
}

/// `--strength` lies in [0, 1] and leaves at least one step to run (checked again with the model's
/// default steps when `--steps` is not given).
func checkStrength(_ strength: Double, steps: Int?) throws {
    guard strength.isFinite, strength >= 0, strength <= 1 else { throw ValidationError("--strength must be between 0 and 1, not \(strength)") }
    guard let steps else { return }
    guard Int(Double(steps) * strength) >= 1 else {
        throw ValidationError("--strength \(strength) with --steps \(steps) runs no denoising step (int(steps * strength) is 0)")
    }
}

/// The picture img2img and inpaint start from, and how its size becomes the output size.
struct InitImageOptions: ParsableArguments {
    static let sizeRules = """
        The output has the init image's size: width and height must be multiples of 8, or give --resize to \
        resize it to the multiples of 8 below (Lanczos, as diffusers resizes). --width and --height, when \
        given, must match the image, or with --resize are the size it is resized to. Transparent pixels \
        are composited over white.
        """

    @Option(help: "The PNG to start from (1 to 16 bits; gray, palette, RGB, with or without alpha).")
    var initImage: String

    @Flag(help: "Resize the init image (Lanczos) to --width x --height, or to the multiples of 8 below its sides.")
    var resize = false

    /// The init image as read, and at the output size (see `readSizedPNG`).
    func load(_ options: GenerationOptions) throws -> (original: RGBImage, sized: RGBImage) {
        try readSizedPNG(initImage, width: options.width, height: options.height, resize: resize)
    }
}

/// A PNG as read, and at the size a model can take: `width`/`height` when given, else its sides
/// rounded down to multiples of 8. A size other than its own needs `resize` (Lanczos, as diffusers).
func readSizedPNG(_ path: String, width: Int?, height: Int?, resize: Bool) throws -> (original: RGBImage, sized: RGBImage) {
    let image = try readPNG(path: path)
    let targetWidth = width ?? image.width - image.width % 8
    let targetHeight = height ?? image.height - image.height % 8
    if (targetWidth, targetHeight) != (image.width, image.height) {
        guard resize else {
            let reason = width == nil && height == nil
                ? "width and height must be multiples of 8" : "--width and --height ask for \(targetWidth)x\(targetHeight)"
            throw InputError("\(path) is \(image.width)x\(image.height); \(reason) "
                                  + "(give --resize to resize it to \(targetWidth)x\(targetHeight))")
        }
        guard targetWidth >= 8, targetHeight >= 8 else {
            throw InputError("\(path) is \(image.width)x\(image.height), too small to resize: each side must be at least 8")
        }
    }
    return (image, try image.resized(width: targetWidth, height: targetHeight))
}

/// An input file or value the command line cannot use; the message names it and the fix.
struct InputError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The options every drawing command shares (one definition, so generate and img2img stay alike).
struct GenerationOptions: ParsableArguments {
    @Argument(help: "What to draw, in AUTOMATIC1111's prompt syntax.")
    var prompt: String

    @Option(help: "What to steer away from (the unconditional text of classifier-free guidance).")
    var negativePrompt = ""

    @Option(help: "A diffusers model folder or a single-file .safetensors checkpoint.")
    var model: String?

    @Option(help: "Tokenizer folder (vocab.json, merges.txt), for single-file checkpoints.")
    var tokenizer: String?

    @Option(help: "Model family: \(ModelFamily.allCases.map(\.rawValue).joined(separator: ", ")). A single file is read with its configurations (SD 2.x files need it); any model takes its defaults. Default: told from the model.")
    var modelType: ModelFamily?

    @Option(help: "For a single-file checkpoint: a diffusers folder with the model's config.json files (and tokenizer/), used instead of a family's.")
    var modelConfig: String?

    @Option(help: "Sampler: \(SchedulerKind.allCases.map(\.rawValue).joined(separator: ", ")). Default: the model's own.")
    var scheduler: SchedulerKind?

    @Option(name: .customLong("lora"), help: "A LoRA .safetensors file to merge, FILE or FILE:WEIGHT (weight 1 when not given); repeatable.")
    var loras: [String] = []

    @Option(help: "Folder of the LoRA files that <lora:NAME:WEIGHT> in the prompt names (NAME.safetensors).")
    var loraDir: String?

    @Option(help: "Condition on the text encoder's last layer (1) or an earlier one (2: the penultimate, as A1111's \"Clip skip\").")
    var clipSkip = 1

    @Option(help: "Denoising steps. Default: the model's (25; SD-Turbo 1, LCM 4).")
    var steps: Int?

    @Option(help: "Classifier-free guidance scale (1 or less turns guidance off). Default: the model's (7.5; SD-Turbo 0, LCM 8.5).")
    var guidanceScale: Float?

    @Option(help: "Random seed (torch-compatible); random when not given, and printed.")
    var seed: UInt64?

    @Option(help: "Image width in pixels, a multiple of 8. Default: the model's native size (img2img: the init image's).")
    var width: Int?

    @Option(help: "Image height in pixels, a multiple of 8. Default: the model's native size (img2img: the init image's).")
    var height: Int?

    @Option(help: "Number of images; image i uses seed + i.")
    var batchCount = 1

    @Option(name: .shortAndLong, help: "Output PNG. With --batch-count > 1, -1, -2, ... are added before .png.")
    var output = "sfumato.png"

    @Option(help: "Save the decoded x0 prediction of every step as a PNG in this folder.")
    var saveIntermediates: String?

    @Option(help: ArgumentHelp("A tiny autoencoder (TAESD: a diffusers AutoencoderTiny folder) to decode with instead of the VAE.",
                               discussion: "A fraction of the VAE's work, slightly softer pictures. Also decodes --preview and --save-intermediates."))
    var taesd: String?

    @Flag(help: "Decode with the VAE in overlapping tiles (diffusers' enable_tiling): the VAE's memory of one tile at any size.")
    var vaeTiling = false

    @Flag(help: ArgumentHelp("After every step, write the picture so far to OUTPUT-preview.png (removed when the image is done).",
                             discussion: "Decoded with --taesd when given (cheap), else with the full VAE (slow)."))
    var preview = false

    @Option(help: "Threads for BLAS and our own loops. Default: all cores.")
    var threads: Int?

    @Flag(help: "Print nothing but errors.")
    var quiet = false

    func validate() throws {
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1") }
        if let guidanceScale, !guidanceScale.isFinite { throw ValidationError("--guidance-scale must be a finite number") }
        guard clipSkip >= 1 else { throw ValidationError("--clip-skip must be at least 1 (1 is the last layer)") }
        for argument in loras where loraArgument(argument).weight?.isFinite == false {
            throw ValidationError("--lora \(argument): the weight must be a finite number")
        }
        if loraDir == nil, let tag = ExtraNetworks.parse(prompt).tags.first(where: { $0.kind == "lora" }) {
            throw ValidationError("the prompt names <lora:\(tag.arguments.joined(separator: ":"))> but no --lora-dir was given")
        }
        guard batchCount >= 1, batchCount <= 10_000 else { throw ValidationError("--batch-count must be between 1 and 10000") }
        if let seed, seed > UInt64.max - UInt64(batchCount - 1) {
            throw ValidationError("--seed \(seed) with --batch-count \(batchCount): image i uses seed + i, which passes \(UInt64.max)")
        }
        try checkThreads(threads)
        try checkImageSize(width: width, height: height)
        guard output.hasSuffix(".png") else { throw ValidationError("--output must end in .png") }
        try checkWritableFolder(URL(fileURLWithPath: output).deletingLastPathComponent().path, option: "--output")
        if let saveIntermediates { try checkWritableFolder(saveIntermediates, option: "--save-intermediates", create: true) }
        if taesd != nil, vaeTiling { throw ValidationError("--vae-tiling tiles the VAE, which --taesd replaces; give one of them") }
    }

    /// FILE:WEIGHT splits at its last colon when a number follows it; anything else is a path.
    func loraArgument(_ argument: String) -> (path: String, weight: Float?) {
        guard let colon = argument.lastIndex(of: ":"), let weight = Float(argument[argument.index(after: colon)...]) else {
            return (argument, nil)
        }
        return (String(argument[..<colon]), weight)
    }

    /// The --lora files, then the prompt's <lora:...> tags from --lora-dir, in that order.
    func loraApplications() throws -> [LoRAApplication] {
        var applications = try loras.map { argument in
            let (path, weight) = loraArgument(argument)
            return LoRAApplication(try LoRA(path: path), weight: weight ?? 1)
        }
        for tag in ExtraNetworks.parse(prompt).tags where tag.kind == "lora" {
            let reference = try ExtraNetworks.loraReference(tag)
            guard let loraDir else { continue }  // validate() refuses tags without --lora-dir
            applications.append(LoRAApplication(try LoRA(named: reference.name, in: loraDir),
                                                textEncoderWeight: reference.textEncoderWeight, unetWeight: reference.unetWeight))
        }
        return applications
    }

    /// Loads the model and draws `batchCount` images: text to image, or image to image from `initImage`
    /// (inpainting with `mask`).
    func draw(initImage: RGBImage?, strength: Double, mask: RGBImage? = nil) throws {
        let status = StatusLine(quiet: quiet)
        if let threads { Runtime.setThreads(threads) }
        let blas = BLASInfo.current()
        status.message("OpenBLAS core \(blas.coreName), \(blas.threads) threads")
        if let warning = blas.warning { status.message(warning) }

        let files = try ModelFiles(path: model ?? DefaultModel.path(), tokenizer: tokenizer, family: modelType, configuration: modelConfig)
        let loadStart = Date()
        let loaded = try StableDiffusionPipeline(files: files)
        status.message("loaded \(loaded.modelName) in " + String(format: "%.1f s", Date().timeIntervalSince(loadStart)))
        let applications = try loraApplications()
        let pipeline = applications.isEmpty ? loaded : try loaded.applyingLoRAs(applications)
        if !applications.isEmpty { status.message("merged LoRA " + applications.map(\.lora.name).joined(separator: ", ")) }

        let tiny = try taesd.map { try AutoencoderTiny(folder: $0) }
        if let tiny { try pipeline.checkCompatible(tiny) }
        let decoder: LatentDecoder = tiny.map { .tiny($0) } ?? (vaeTiling ? .vaeTiled : .vae)

        let firstSeed = seed ?? UInt64(UInt32.random(in: 0...UInt32.max))
        if seed == nil { status.message("seed \(firstSeed)") }
        let kind = try scheduler ?? SchedulerKind(defaultFor: pipeline.schedulerConfig)
        // What the user left out comes from the model, and is said.
        let defaults = pipeline.defaults
        let steps = self.steps ?? defaults.steps
        let guidanceScale = self.guidanceScale ?? defaults.guidanceScale
        var chosen: [String] = []
        if self.steps == nil { chosen.append("\(steps) step" + (steps == 1 ? "" : "s")) }
        if self.guidanceScale == nil { chosen.append("guidance scale \(guidanceScale)" + (guidanceScale <= 1 ? " (off)" : "")) }
        if scheduler == nil { chosen.append("scheduler \(kind.rawValue) (the model's \(pipeline.schedulerConfig.className ?? ""))") }
        if !chosen.isEmpty { status.message("\(pipeline.family.rawValue) defaults: " + chosen.joined(separator: ", ")) }
        // validate() could not check the strength against steps that come from the model.
        try checkStrength(strength, steps: steps)
        Interruption.install()
        for index in 0..<batchCount {
            let request = GenerationRequest(
                prompt: prompt, negativePrompt: negativePrompt, steps: steps, guidanceScale: guidanceScale,
                seed: firstSeed + UInt64(index), width: width, height: height, scheduler: kind,
                initImage: initImage, strength: strength, mask: mask, clipSkip: clipSkip)
            let path = batchCount == 1 ? output : String(output.dropLast(4)) + "-\(index + 1).png"
            let previewPath = String(path.dropLast(4)) + "-preview.png"
            // The preview goes with its image: written or not (failed, interrupted), it is removed.
            defer { if preview { try? FileManager.default.removeItem(atPath: previewPath) } }
            // An intermediate that cannot be written stops the run and is reported, not skipped.
            var intermediateError: (any Error)?
            let latents: Tensor
            do {
                latents = try pipeline.generateLatents(request) { progress in
                    status.progress(step: progress.step, total: progress.totalSteps, elapsed: progress.elapsed,
                                    label: batchCount == 1 ? "" : "image \(index + 1)/\(batchCount) ")
                    guard !Interruption.isRequested else { return false }
                    guard saveIntermediates != nil || preview else { return true }
                    do {
                        let picture = try pipeline.decode(progress.predictedOriginal, using: decoder)
                        if preview { try writePNG(picture, to: previewPath) }
                        if let saveIntermediates {
                            let name = (batchCount == 1 ? "" : "\(index + 1)-") + String(format: "step-%03d.png", progress.step)
                            try writePNG(picture, to: URL(fileURLWithPath: saveIntermediates).appendingPathComponent(name).path)
                        }
                        return true
                    } catch {
                        intermediateError = error
                        return false
                    }
                }
            } catch GenerationError.cancelled(let step) where intermediateError == nil {
                status.finishProgress()
                throw Interruption.stop("stopped after step \(step); \(path) was not written")
            } catch {
                status.finishProgress()
                throw intermediateError ?? error
            }
            status.finishProgress()
            let size = pipeline.outputSize(request)
            let metadata = A1111Parameters(request: request, scheduler: kind, width: size.width, height: size.height,
                                           model: pipeline.modelName)
            let picture = try pipeline.decode(latents, using: decoder)
            // Interrupted while decoding: the picture is complete, but the user asked for no more output.
            guard !Interruption.isRequested else { throw Interruption.stop("\(path) was not written") }
            try writePNG(picture, to: path, text: [("parameters", metadata.text)])
            status.message("wrote \(path) (seed \(request.seed))")
        }
    }
}

extension SchedulerKind: ExpressibleByArgument {}
extension ModelFamily: ExpressibleByArgument {}

/// Fails early, before loading a model, when results could not be saved.
/// `--threads`, when given, is between 1 and 1024.
func checkThreads(_ threads: Int?) throws {
    if let threads, threads < 1 || threads > 1024 { throw ValidationError("--threads must be between 1 and 1024") }
}

/// `--width` and `--height`, when given, are positive multiples of 8.
func checkImageSize(width: Int?, height: Int?) throws {
    for (name, value) in [("--width", width), ("--height", height)] {
        if let value, value < 8 || value % 8 != 0 { throw ValidationError("\(name) must be a positive multiple of 8, not \(value)") }
    }
}

func checkWritableFolder(_ path: String, option: String, create: Bool = false) throws {
    let folder = path.isEmpty ? "." : path
    var isDirectory: ObjCBool = false
    if !FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), create {
        do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
            throw ValidationError("\(option): cannot create folder \(folder): \(error.localizedDescription)")
        }
        isDirectory = true
    }
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw ValidationError("\(option): folder \(folder) does not exist")
    }
    guard FileManager.default.isWritableFile(atPath: folder) else { throw ValidationError("\(option): folder \(folder) is not writable") }
}
