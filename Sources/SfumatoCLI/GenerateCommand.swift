import ArgumentParser
import Foundation
import Sfumato

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Draw an image from a text prompt and save it as a PNG with its generation parameters.",
        discussion: """
        Without --model, the embedded default model in Models/ is used. A model is a diffusers folder \
        (model_index.json, text_encoder/, tokenizer/, unet/, vae/, scheduler/) or a single-file SD 1.x \
        .safetensors checkpoint (give --tokenizer, or put a tokenizer/ folder beside it).
        The same model, prompt, negative prompt, seed, scheduler, steps, guidance and size give the image \
        diffusers gives.
        Prompts use AUTOMATIC1111's syntax: (word) and [word] weigh a word by 1.1 and 1/1.1, (word:1.5) by \
        1.5, \\( \\) \\[ \\] are literal brackets, BREAK starts a new chunk, and prompts longer than 75 \
        tokens are encoded in chunks of 75. A prompt without any of this is encoded as diffusers encodes it.
        """
    )

    @Argument(help: "What to draw, in AUTOMATIC1111's prompt syntax.")
    var prompt: String

    @Option(help: "What to steer away from (the unconditional text of classifier-free guidance).")
    var negativePrompt = ""

    @Option(help: "A diffusers model folder or a single-file .safetensors checkpoint.")
    var model: String?

    @Option(help: "Tokenizer folder (vocab.json, merges.txt), for single-file checkpoints.")
    var tokenizer: String?

    @Option(help: "Sampler: \(SchedulerKind.allCases.map(\.rawValue).joined(separator: ", ")). Default: the model's own.")
    var scheduler: SchedulerKind?

    @Option(help: "Condition on the text encoder's last layer (1) or an earlier one (2: the penultimate, as A1111's \"Clip skip\").")
    var clipSkip = 1

    @Option(help: "Denoising steps.")
    var steps = 25

    @Option(help: "Classifier-free guidance scale (1 turns guidance off).")
    var guidanceScale: Float = 7.5

    @Option(help: "Random seed (torch-compatible); random when not given, and printed.")
    var seed: UInt64?

    @Option(help: "Image width in pixels, a multiple of 8. Default: the model's native size.")
    var width: Int?

    @Option(help: "Image height in pixels, a multiple of 8. Default: the model's native size.")
    var height: Int?

    @Option(help: "Number of images; image i uses seed + i.")
    var batchCount = 1

    @Option(name: .shortAndLong, help: "Output PNG. With --batch-count > 1, -1, -2, ... are added before .png.")
    var output = "sfumato.png"

    @Option(help: "Save the decoded x0 prediction of every step as a PNG in this folder.")
    var saveIntermediates: String?

    @Option(help: "Threads for BLAS and our own loops. Default: all cores.")
    var threads: Int?

    @Flag(help: "Print nothing but errors.")
    var quiet = false

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
        guard guidanceScale.isFinite else { throw ValidationError("--guidance-scale must be a finite number") }
        guard clipSkip >= 1 else { throw ValidationError("--clip-skip must be at least 1 (1 is the last layer)") }
        guard batchCount >= 1, batchCount <= 10_000 else { throw ValidationError("--batch-count must be between 1 and 10000") }
        try checkThreads(threads)
        try checkImageSize(width: width, height: height)
        guard output.hasSuffix(".png") else { throw ValidationError("--output must end in .png") }
        try checkWritableFolder(URL(fileURLWithPath: output).deletingLastPathComponent().path, option: "--output")
        if let saveIntermediates { try checkWritableFolder(saveIntermediates, option: "--save-intermediates", create: true) }
    }

    func run() throws {
        let status = StatusLine(quiet: quiet)
        if let threads { Runtime.setThreads(threads) }
        let blas = BLASInfo.current()
        status.message("OpenBLAS core \(blas.coreName), \(blas.threads) threads")
        if let warning = blas.warning { status.message(warning) }

        let files = try ModelFiles(path: model ?? DefaultModel.path(), tokenizer: tokenizer)
        let loadStart = Date()
        let pipeline = try StableDiffusionPipeline(files: files)
        status.message("loaded \(pipeline.modelName) in " + String(format: "%.1f s", Date().timeIntervalSince(loadStart)))

        let firstSeed = seed ?? UInt64(UInt32.random(in: 0...UInt32.max))
        if seed == nil { status.message("seed \(firstSeed)") }
        let kind = try scheduler ?? SchedulerKind(defaultFor: pipeline.schedulerConfig)
        for index in 0..<batchCount {
            let request = GenerationRequest(
                prompt: prompt, negativePrompt: negativePrompt, steps: steps, guidanceScale: guidanceScale,
                seed: firstSeed + UInt64(index), width: width, height: height, scheduler: kind,
                clipSkip: clipSkip)
            let path = batchCount == 1 ? output : String(output.dropLast(4)) + "-\(index + 1).png"
            // An intermediate that cannot be written stops the run and is reported, not skipped.
            var intermediateError: (any Error)?
            let latents: Tensor
            do {
                latents = try pipeline.generateLatents(request) { progress in
                    status.progress(step: progress.step, total: progress.totalSteps, elapsed: progress.elapsed,
                                    label: batchCount == 1 ? "" : "image \(index + 1)/\(batchCount) ")
                    guard let saveIntermediates else { return true }
                    let name = (batchCount == 1 ? "" : "\(index + 1)-") + String(format: "step-%03d.png", progress.step)
                    do {
                        try writePNG(pipeline.decode(progress.predictedOriginal),
                                     to: URL(fileURLWithPath: saveIntermediates).appendingPathComponent(name).path)
                        return true
                    } catch {
                        intermediateError = error
                        return false
                    }
                }
            } catch {
                status.finishProgress()
                throw intermediateError ?? error
            }
            status.finishProgress()
            let metadata = A1111Parameters(request: request, scheduler: kind, width: width ?? pipeline.defaultWidth,
                                           height: height ?? pipeline.defaultHeight, model: pipeline.modelName)
            try writePNG(pipeline.decode(latents), to: path, text: [("parameters", metadata.text)])
            status.message("wrote \(path) (seed \(request.seed))")
        }
    }
}

extension SchedulerKind: ExpressibleByArgument {}

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
