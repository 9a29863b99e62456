import Foundation

/// What to draw. Width and height default to the model's native size (image to image: the init image's).
public struct GenerationRequest: Sendable {
    /// In AUTOMATIC1111's syntax: `(word)`, `(word:1.5)`, `[word]`, `\(`, `BREAK`, any length
    /// (chunks of 75 tokens); see `PromptParser` and `CLIPTokenizer.chunks`.
    public var prompt: String
    /// The unconditional text of classifier-free guidance ("" when not given), in the same syntax.
    public var negativePrompt: String
    public var steps: Int
    public var guidanceScale: Float
    public var seed: UInt64
    public var width: Int?
    public var height: Int?
    /// nil: the model's own scheduler (scheduler/scheduler_config.json's class).
    public var scheduler: SchedulerKind?
    /// Image to image: the picture the run starts from (its size is the output size). nil: text to image.
    public var initImage: RGBImage?
    /// Image to image: how much of the schedule runs, in [0, 1] (diffusers' `strength`): 1 starts from pure
    /// noise and keeps little of the image, 0.3 runs the last 30% of the steps and changes it only slightly.
    public var strength: Double
    /// Inpainting (needs `initImage`, same size): light where the picture is redrawn, dark where it is kept
    /// (binarized at half gray as diffusers does). 9-channel inpainting UNets take it as input; ordinary
    /// UNets keep the unmasked part by blending the noised init latents back in after every step.
    public var mask: RGBImage?
    /// AUTOMATIC1111's "Clip skip": 1 conditions on the text encoder's last layer, 2 on the penultimate one.
    public var clipSkip: Int

    public init(prompt: String, negativePrompt: String = "", steps: Int = 25, guidanceScale: Float = 7.5,
                seed: UInt64 = 0, width: Int? = nil, height: Int? = nil, scheduler: SchedulerKind? = nil,
                initImage: RGBImage? = nil, strength: Double = 0.8, mask: RGBImage? = nil, clipSkip: Int = 1) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.steps = steps
        self.guidanceScale = guidanceScale
        self.seed = seed
        self.width = width
        self.height = height
        self.scheduler = scheduler
        self.initImage = initImage
        self.strength = strength
        self.mask = mask
        self.clipSkip = clipSkip
    }
}

/// Reported after every denoising step; the callback returns false to stop the run.
public struct GenerationProgress: Sendable {
    public let step: Int
    public let totalSteps: Int
    /// Seconds since the run started (text encoding included).
    public let elapsed: Double
    /// The latents after this step.
    public let latents: Tensor
    /// The scheduler's current estimate of the final latents (decode it for a preview).
    public let predictedOriginal: Tensor
}

public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case invalidRequest(String)
    case cancelled(afterStep: Int)
    /// A `GenerationGate`'s queue was full: `waiting` runs were already waiting for a slot.
    case busy(waiting: Int)

    public var description: String {
        switch self {
        case let .invalidRequest(reason): reason
        case let .cancelled(step): "cancelled after step \(step)"
        case let .busy(waiting): "busy: \(waiting) generations are already waiting; try again later"
        }
    }
}

/// Text to image with Stable Diffusion 1.x, 2.x and XL: load once, then call `generate` from any number of
/// tasks at once (the networks are read-only; each run has its own scheduler and random source).
public final class StableDiffusionPipeline: Sendable {
    public let tokenizer: CLIPTokenizer
    public let textEncoder: CLIPTextModel
    /// SDXL: the second tokenizer (the same vocabulary, padding with "!") and text encoder (OpenCLIP ViT-bigG).
    public let tokenizer2: CLIPTokenizer?
    public let textEncoder2: CLIPTextModelWithProjection?
    /// SDXL: whether an empty negative prompt conditions on zeros (model_index.json's `force_zeros_for_empty_prompt`).
    public let forceZerosForEmptyPrompt: Bool
    public let unet: UNet2DConditionModel
    public let vae: AutoencoderKL
    public let schedulerConfig: SchedulerConfig
    /// Shown in PNG metadata: the model folder or file name.
    public let modelName: String
    /// The family the model belongs to (given, or told from its configurations), which sets its defaults.
    public let family: ModelFamily
    /// The LoRAs merged into `textEncoder` and `unet` (none for a pipeline loaded from files).
    public let loras: [LoRAApplication]
    /// The weights as loaded, without LoRAs: `applyingLoRAs` always starts from them.
    let baseTextEncoderTensors: LoadedTensors
    let baseUNetTensors: LoadedTensors
    let baseTextEncoder2Tensors: LoadedTensors?
    private let baseTextEncoder: CLIPTextModel
    private let baseUNet: UNet2DConditionModel

    /// Loads every part of the model; all tensor problems of a component come in one error.
    public init(files: ModelFiles) throws {
        modelName = files.displayName
        tokenizer = try CLIPTokenizer(directory: try files.requireTokenizerFolder(), padToken: files.preset?.padToken)
        schedulerConfig = try files.config(component: "scheduler") { data, _ in
            try SchedulerConfig.decode(json: data)
        }

        let textConfig = try files.config(component: "text_encoder") { data, _ in
            try JSONDecoder().decode(CLIPTextConfig.self, from: data)
        }
        let textTensors = RecordingTensorSource(try files.tensors(component: "text_encoder", original: .textEncoder))
        textEncoder = try CLIPTextModel(config: textConfig, weights: textTensors)
        baseTextEncoderTensors = textTensors.loaded
        baseTextEncoder = textEncoder
        if files.hasSecondTextEncoder {
            tokenizer2 = try CLIPTokenizer(directory: try files.requireSecondTokenizerFolder(), padToken: files.preset.map { _ in "!" })
            let config = try files.config(component: "text_encoder_2") { data, _ in
                try JSONDecoder().decode(CLIPTextConfig.self, from: data)
            }
            let tensors = RecordingTensorSource(try files.tensors(component: "text_encoder_2", original: .sdxlOpenCLIPTextEncoder))
            textEncoder2 = try CLIPTextModelWithProjection(config: config, weights: tensors)
            baseTextEncoder2Tensors = tensors.loaded
        } else {
            (tokenizer2, textEncoder2, baseTextEncoder2Tensors) = (nil, nil, nil)
        }
        forceZerosForEmptyPrompt = files.forceZerosForEmptyPrompt

        let unetConfig = try files.config(component: "unet") { data, path in
            try UNet2DConditionConfig(json: data, path: path)
        }
        family = files.family ?? ModelFamily(textEncoder: textConfig, unet: unetConfig, scheduler: schedulerConfig)
        let vaeConfig = try files.config(component: "vae") { data, _ in
            try JSONDecoder().decode(AutoencoderKLConfig.self, from: data)
        }
        // The UNet denoises the VAE's latents: the same channels out, and in (or 2L + 1 for an inpainting
        // UNet, which also takes the mask and the masked image's latents).
        try Self.checkTextConditioning(unet: unetConfig, first: textConfig, second: textEncoder2?.config, model: files.displayName)
        let latent = vaeConfig.latentChannels
        guard unetConfig.outChannels == latent, unetConfig.inChannels == latent || unetConfig.inChannels == 2 * latent + 1 else {
            throw ModelLoadError.invalidConfig(
                path: "\(files.displayName) unet",
                reason: "the UNet has \(unetConfig.inChannels) input and \(unetConfig.outChannels) output channels; "
                    + "with \(latent) VAE latent channels Stable Diffusion needs \(latent) in (\(2 * latent + 1) for inpainting) and \(latent) out")
        }
        let unetTensors = RecordingTensorSource(try files.tensors(component: "unet", original: .unet(layersPerBlock: unetConfig.layersPerBlock[0])))
        unet = try UNet2DConditionModel(config: unetConfig, weights: unetTensors)
        baseUNetTensors = unetTensors.loaded
        baseUNet = unet
        loras = []
        vae = try AutoencoderKL(
            config: vaeConfig, weights: try files.tensors(component: "vae", original: .vae(blockCount: vaeConfig.blockOutChannels.count)))
    }

    private init(base: StableDiffusionPipeline, textEncoder: CLIPTextModel, unet: UNet2DConditionModel, loras: [LoRAApplication]) {
        tokenizer = base.tokenizer
        self.textEncoder = textEncoder
        (tokenizer2, textEncoder2, forceZerosForEmptyPrompt) = (base.tokenizer2, base.textEncoder2, base.forceZerosForEmptyPrompt)
        baseTextEncoder2Tensors = base.baseTextEncoder2Tensors
        self.unet = unet
        vae = base.vae
        schedulerConfig = base.schedulerConfig
        modelName = base.modelName
        family = base.family
        self.loras = loras
        baseTextEncoderTensors = base.baseTextEncoderTensors
        baseUNetTensors = base.baseUNetTensors
        baseTextEncoder = base.baseTextEncoder
        baseUNet = base.baseUNet
    }

    /// This model with `loras` merged in place of whatever LoRAs this pipeline has (none: the model
    /// as loaded). Only the weights a LoRA changes are copied; everything else, the VAE and the
    /// tokenizer are shared with this pipeline, which stays as it is, so one loaded model serves
    /// any number of LoRA sets side by side.
    public func applyingLoRAs(_ loras: [LoRAApplication]) throws -> StableDiffusionPipeline {
        let merged = try LoRAMerge.merge(loras, unet: baseUNetTensors, textEncoder: baseTextEncoderTensors)
        // A network no LoRA touches is the one loaded from the files.
        let text = merged.textEncoder.isEmpty ? baseTextEncoder
            : try CLIPTextModel(config: textEncoder.config, weights: baseTextEncoderTensors.replacing(merged.textEncoder))
        let denoiser = merged.unet.isEmpty ? baseUNet
            : try UNet2DConditionModel(config: unet.config, weights: baseUNetTensors.replacing(merged.unet))
        return StableDiffusionPipeline(base: self, textEncoder: text, unet: denoiser, loras: loras)
    }

    /// SDXL's text conditioning must fit its UNet: both encoders' widths joined are the cross-attention width,
    /// and the pooled width plus six size embeddings the added embedding's input; SD 1.x/2.x have neither.
    static func checkTextConditioning(unet: UNet2DConditionConfig, first: CLIPTextConfig, second: CLIPTextConfig?,
                                      model: String) throws(ModelLoadError) {
        let path = "\(model) unet"
        guard let second else {
            if unet.additionEmbedType != nil {
                throw .invalidConfig(path: path, reason: "the UNet has SDXL's added conditioning (addition_embed_type \"text_time\") but the model has no text_encoder_2")
            }
            return
        }
        guard let inputWidth = unet.projectionClassEmbeddingsInputDim, let timeWidth = unet.additionTimeEmbedDim else {
            throw .invalidConfig(path: path, reason: "the model has a text_encoder_2 (SDXL) but its UNet has no addition_embed_type \"text_time\"")
        }
        guard unet.crossAttentionDim == first.hiddenSize + second.hiddenSize else {
            throw .invalidConfig(path: path, reason: "cross_attention_dim \(unet.crossAttentionDim) is not the text encoders' widths "
                                 + "\(first.hiddenSize) + \(second.hiddenSize)")
        }
        guard inputWidth == second.projectionDim + 6 * timeWidth else {
            throw .invalidConfig(path: path, reason: "projection_class_embeddings_input_dim \(inputWidth) is not text_encoder_2's projection_dim "
                                 + "\(second.projectionDim) + 6 size values x addition_time_embed_dim \(timeWidth) (SDXL refiners are not supported)")
        }
    }

    /// The steps and guidance scale the model is meant to run with (its family's).
    public var defaults: GenerationDefaults { family.defaults }

    /// Pixels per latent cell (8 for SD: one per VAE downsampling level).
    /// Takes the text encoder's weights out of resident memory until the next prompt, as every
    /// generation does once its prompts are encoded: used in place from a memory-mapped fp32 file
    /// (0.5 GB for SD 1.5) they would otherwise sit idle while the UNet and the VAE run; the next
    /// prompt reads them back from the page cache (minor faults, no disk I/O). Weights converted
    /// on load (fp16, bf16) or changed by LoRAs are the process's own memory and stay.
    public func releaseTextEncoderMemory() {
        baseTextEncoderTensors.releaseResidentPages()
        baseTextEncoder2Tensors?.releaseResidentPages()
    }

    /// The largest clip skip the text encoder(s) allow: SD 1.x/2.x count from the last layer, SDXL from the penultimate.
    public var maximumClipSkip: Int {
        if let textEncoder2 { return SDXLTextEncoders(first: textEncoder, second: textEncoder2).maximumClipSkip }
        return textEncoder.config.numHiddenLayers
    }

    /// The conditioning of each prompt, in order (extra-network tags must already be removed). SDXL: both
    /// encoders; with `zeroingEmptyNegative` (the first prompt is a guided run's negative prompt) and the model's
    /// `force_zeros_for_empty_prompt`, an empty first prompt is zeros shaped like the second's conditioning.
    public func encodePrompts(_ prompts: [String], clipSkip: Int = 1, zeroingEmptyNegative: Bool = false) throws -> [PromptConditioning] {
        guard let textEncoder2, let tokenizer2 else {
            return try textEncoder.encode(try prompts.map { try tokenizer.chunks($0) }, clipSkip: clipSkip)
                .map { PromptConditioning(states: $0, pooled: nil) }
        }
        let zeroFirst = zeroingEmptyNegative && forceZerosForEmptyPrompt && prompts.count > 1 && prompts[0].isEmpty
        let encoded = zeroFirst ? Array(prompts.dropFirst()) : prompts
        let encoders = SDXLTextEncoders(first: textEncoder, second: textEncoder2)
        let results = try encoders.encode(try encoded.map { try tokenizer.chunks($0) }, try encoded.map { try tokenizer2.chunks($0) },
                                          clipSkip: clipSkip)
        guard zeroFirst, let conditional = results.first else { return results }
        return [PromptConditioning.zeros(like: conditional)] + results
    }

    /// SDXL: each conditioning's added conditions for an image of `width` x `height`; nil for SD 1.x/2.x.
    public func addedConditions(_ conditioning: [PromptConditioning], width: Int, height: Int) -> [UNetAddedConditions]? {
        let pooled = conditioning.compactMap(\.pooled)
        guard !pooled.isEmpty, pooled.count == conditioning.count else { return nil }
        let timeIds = UNetAddedConditions.sizeConditioning(width: width, height: height)
        return pooled.map { UNetAddedConditions(textEmbeds: $0, timeIds: timeIds) }
    }

    public var vaeScaleFactor: Int { 1 << (vae.config.blockOutChannels.count - 1) }
    /// The UNet's sample_size (latent cells) in pixels; diffusers reads it the same way.
    public var defaultWidth: Int { (unet.config.sampleSize?.last ?? 64) * vaeScaleFactor }
    public var defaultHeight: Int { (unet.config.sampleSize?.first ?? 64) * vaeScaleFactor }

    /// The image size a request draws: the init image's for image to image, else the asked or native size.
    public func outputSize(_ request: GenerationRequest) -> (width: Int, height: Int) {
        if let image = request.initImage { return (image.width, image.height) }
        return (request.width ?? defaultWidth, request.height ?? defaultHeight)
    }

    /// Longer prompts are refused: 64 chunks are 4800 tokens, far beyond any prompt that steers an image.
    public static let maximumPromptChunks = 64
    /// Longer prompt texts are refused before they are parsed (a megabyte from a request is not read):
    /// 64 chunks of 75 tokens, even heavily weighted ones such as `(word:1.25), `, fit well within it.
    public static let maximumPromptBytes = 64 << 10

    /// Checks a request before any work; the message names the bad value.
    public func validate(_ request: GenerationRequest) throws(GenerationError) {
        let (width, height) = outputSize(request)
        guard request.steps >= 1, request.steps <= 1000 else { throw .invalidRequest("steps must be between 1 and 1000, not \(request.steps)") }
        guard request.guidanceScale.isFinite else { throw .invalidRequest("guidance scale must be a finite number, not \(request.guidanceScale)") }
        guard unet.config.inChannels == vae.config.latentChannels || request.mask != nil else {
            throw .invalidRequest("this model's UNet takes \(unet.config.inChannels) input channels (an inpainting model): "
                                  + "it needs an init image and a mask; text to image and image to image need \(vae.config.latentChannels)")
        }
        if let mask = request.mask {
            guard let image = request.initImage else { throw .invalidRequest("a mask needs an init image to inpaint") }
            guard mask.width == image.width, mask.height == image.height else {
                throw .invalidRequest("the mask is \(mask.width)x\(mask.height) but the init image is \(image.width)x\(image.height); they must match")
            }
        }
        if let image = request.initImage {
            guard request.strength.isFinite, request.strength >= 0, request.strength <= 1 else {
                throw .invalidRequest("strength must be between 0 and 1, not \(request.strength)")
            }
            guard imageToImageBeginIndex(steps: request.steps, strength: request.strength) < request.steps else {
                throw .invalidRequest("strength \(request.strength) with \(request.steps) steps runs no denoising step "
                                      + "(int(steps * strength) is 0); raise the strength or the steps")
            }
            for (name, asked, actual) in [("width", request.width, image.width), ("height", request.height, image.height)] {
                if let asked, asked != actual {
                    throw .invalidRequest("the request asks for \(name) \(asked) but the init image's \(name) is \(actual); "
                                          + "image to image draws at the init image's size")
                }
            }
        }
        let maximumClipSkip = maximumClipSkip
        guard (1...maximumClipSkip).contains(request.clipSkip) else {
            let reason = textEncoder2 == nil ? "the text encoder's layers" : "SDXL counts from the penultimate layer"
            throw .invalidRequest("clip skip must be between 1 and \(maximumClipSkip) (\(reason)), not \(request.clipSkip)")
        }
        for (name, text) in [("prompt", request.prompt), ("negative prompt", request.negativePrompt)] {
            guard text.utf8.count <= Self.maximumPromptBytes else {
                throw .invalidRequest("the \(name) is \(text.utf8.count) bytes; at most \(Self.maximumPromptBytes) are allowed")
            }
            let chunks: Int
            do { chunks = try tokenizer.chunks(name == "prompt" ? ExtraNetworks.removingTags(from: text) : text).count } catch {
                throw .invalidRequest(error.description)
            }
            guard chunks <= Self.maximumPromptChunks else {
                throw .invalidRequest("the \(name) needs \(chunks) chunks of \(tokenizer.maxLength - 2) tokens; at most \(Self.maximumPromptChunks) are allowed")
            }
        }
        let subject = request.initImage == nil ? "" : "init image "
        for (name, value) in [("width", width), ("height", height)] {
            // Multiples of 8 as diffusers requires, and of the VAE's factor so latents tile the image.
            let multiple = max(8, vaeScaleFactor)
            guard value >= multiple, value % multiple == 0 else {
                throw .invalidRequest("\(subject)\(name) must be a positive multiple of \(multiple), not \(value)")
            }
        }
        // The VAE's widest activations dominate memory: about 6 live float maps of its
        // widest channel count at full resolution (decoder, and encoder for image to image).
        let bytes = 6 * Double(vae.config.blockOutChannels.first ?? 128) * Double(width) * Double(height) * 4
        let available = Double(ProcessInfo.processInfo.physicalMemory)
        guard bytes < 0.75 * available else {
            throw .invalidRequest(String(format: "%dx%d needs about %.0f GB for the VAE, more than this machine's %.0f GB",
                                         width, height, bytes / 1e9, available / 1e9))
        }
    }

    /// Runs text encoding, the denoising loop and the VAE decode; returns the image's latents.
    public func generateLatents(_ request: GenerationRequest,
                                progress: (GenerationProgress) -> Bool = { _ in true }) throws -> Tensor {
        try validate(request)
        let startTime = DispatchTime.now().uptimeNanoseconds
        // Guidance off (scale <= 1) runs the conditional batch alone, as diffusers does; so does an LCM
        // UNet, which takes the scale as an embedding instead (diffusers' `timestep_cond`).
        let guided = request.guidanceScale > 1 && unet.config.timeCondProjDim == nil
        let condition = unet.config.timeCondProjDim.map { guidanceScaleEmbedding([request.guidanceScale], dimension: $0) }
        // AUTOMATIC1111 takes `<lora:...>` and other extra-network tags out of the prompt (not the negative prompt).
        let prompts = guided ? [request.negativePrompt, ExtraNetworks.removingTags(from: request.prompt)]
            : [ExtraNetworks.removingTags(from: request.prompt)]
        let conditioning = try encodePrompts(prompts, clipSkip: request.clipSkip, zeroingEmptyNegative: guided)
        releaseTextEncoderMemory()
        let textStates = conditioning.map(\.states)
        let (width, height) = outputSize(request)
        let added = addedConditions(conditioning, width: width, height: height)
        // Prompt and negative prompt of the same length run as one batch; otherwise each half runs
        // with its own length, as AUTOMATIC1111 does unless told to pad them.
        let batchedStates = textStates.count == 2 && textStates[0].shape == textStates[1].shape ? concat(textStates, axis: 0) : nil

        var scheduler = try makeScheduler(kind: try request.scheduler ?? SchedulerKind(defaultFor: schedulerConfig),
                                          config: schedulerConfig, steps: request.steps)
        var random: any RandomSource = TorchRandom(seed: request.seed)
        let start = try startingPoint(request, scheduler: scheduler, random: &random)
        var latents = start.latents
        let begin = start.begin
        // An inpainting UNet's extra input channels (mask and masked image latents), appended to
        // every batch entry the UNet sees.
        let extraInput = start.extraInput
        func withExtraInput(_ batch: Tensor) -> Tensor {
            guard let extraInput else { return batch }
            return concat([batch, batch.shape[0] == 1 ? extraInput : concat([extraInput, extraInput], axis: 0)], axis: 1)
        }

        let totalSteps = scheduler.timesteps.count - begin
        for index in begin..<scheduler.timesteps.count {
            let timestep = scheduler.timesteps[index]
            let input = scheduler.scaleModelInput(latents, stepIndex: index)
            let noise = if !guided {
                try unet(withExtraInput(input), timestep: timestep, encoderHiddenStates: textStates[0], timestepCondition: condition,
                         addedConditions: added?[0])
            } else if let batchedStates {
                try unet(withExtraInput(concat([input, input], axis: 0)), timestep: timestep, encoderHiddenStates: batchedStates,
                         addedConditions: added.map(UNetAddedConditions.batched))
            } else {
                concat([try unet(withExtraInput(input), timestep: timestep, encoderHiddenStates: textStates[0], addedConditions: added?[0]),
                        try unet(withExtraInput(input), timestep: timestep, encoderHiddenStates: textStates[1], addedConditions: added?[1])],
                       axis: 0)
            }
            let prediction = guided
                ? classifierFreeGuidance(unconditional: noise.slice(0..<1), conditional: noise.slice(1..<2), scale: request.guidanceScale)
                : noise
            let step = scheduler.step(modelOutput: prediction, stepIndex: index, sample: latents, random: &random)
            latents = step.prevSample
            if let blend = start.blend {
                // Outside the mask: the init latents noised to the next step's level (clean after the last).
                let kept = index + 1 < scheduler.timesteps.count
                    ? scheduler.addNoise(blend.imageLatents, noise: blend.noise, stepIndex: index + 1) : blend.imageLatents
                latents = blendMasked(original: kept, generated: latents, mask: blend.mask)
            }
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - startTime) / 1e9
            let report = GenerationProgress(step: index - begin + 1, totalSteps: totalSteps, elapsed: elapsed,
                                            latents: latents, predictedOriginal: step.predictedOriginal)
            guard progress(report) else { throw GenerationError.cancelled(afterStep: index - begin + 1) }
        }
        return latents
    }

    /// Where the denoising loop starts, and what inpainting adds to each step.
    private struct StartingPoint {
        var begin = 0
        var latents: Tensor
        /// 9-channel UNets: the latent-size mask and the masked image's latents, concatenated after the latents.
        var extraInput: Tensor?
        /// 4-channel UNets inpainting: the init latents, their noise and the latent-size mask.
        var blend: (imageLatents: Tensor, noise: Tensor, mask: Tensor)?
    }

    /// The first latents, with the random draws in diffusers' order for each mode.
    private func startingPoint(_ request: GenerationRequest, scheduler: any Scheduler,
                               random: inout any RandomSource) throws -> StartingPoint {
        let (width, height) = outputSize(request)
        let latentShape = [1, vae.config.latentChannels, height / vaeScaleFactor, width / vaeScaleFactor]
        guard let image = request.initImage else {
            return StartingPoint(latents: scaled(random.normal(shape: latentShape), by: scheduler.initNoiseSigma))
        }
        // Second-order samplers visit two timesteps per step (diffusers' `t_start * order`).
        let begin = imageToImageBeginIndex(steps: request.steps, strength: request.strength) * scheduler.order
        let pixels = image.normalizedTensor()
        guard let maskImage = request.mask else {
            // StableDiffusionImg2ImgPipeline: the encoder's sample, then the noise of add_noise.
            let clean = try encodeLatents(pixels, random: &random)
            return StartingPoint(begin: begin, latents: scheduler.addNoise(clean, noise: random.normal(shape: clean.shape), stepIndex: begin))
        }
        // StableDiffusionInpaintPipeline: the image's sample (when it is used), the noise, then the masked
        // image's sample; strength 1 starts from pure noise rather than add_noise.
        let fromNoise = request.strength == 1
        let mask = maskImage.inpaintingMask()
        let latentMask = nearestResized(mask, height: latentShape[2], width: latentShape[3])
        if unet.config.inChannels != vae.config.latentChannels {
            let clean = fromNoise ? nil : try encodeLatents(pixels, random: &random)
            let noise = random.normal(shape: latentShape)
            let latents = clean.map { scheduler.addNoise($0, noise: noise, stepIndex: begin) } ?? scaled(noise, by: scheduler.initNoiseSigma)
            let masked = try encodeLatents(keepingUnmasked(pixels, mask: mask), random: &random)
            return StartingPoint(begin: begin, latents: latents, extraInput: concat([latentMask, masked], axis: 1))
        }
        let clean = try encodeLatents(pixels, random: &random)
        let noise = random.normal(shape: latentShape)
        let latents = fromNoise ? scaled(noise, by: scheduler.initNoiseSigma) : scheduler.addNoise(clean, noise: noise, stepIndex: begin)
        // diffusers encodes the masked image for ordinary UNets too and leaves it unused: only its draw matters.
        _ = random.normal(shape: latentShape)
        return StartingPoint(begin: begin, latents: latents, blend: (clean, noise, latentMask))
    }

    /// An image's latents as image to image starts from them: a sample of the VAE encoder's latent
    /// distribution drawn from `random` (diffusers' `latent_dist.sample(generator)`), times the scaling factor.
    public func encodeLatents(_ image: RGBImage, random: inout any RandomSource) throws -> Tensor {
        try encodeLatents(image.normalizedTensor(), random: &random)
    }

    /// An image's latents without sampling: the mean of the encoder's distribution times the scaling factor.
    public func encodeMeanLatents(_ image: RGBImage) throws -> Tensor {
        scaled(try vae.encode(image.normalizedTensor()).mean, by: vae.config.scalingFactor)
    }

    /// The same for pixels already in [-1, 1], shape [1, 3, H, W].
    func encodeLatents(_ pixels: Tensor, random: inout any RandomSource) throws -> Tensor {
        let distribution = try vae.encode(pixels)
        return scaled(distribution.sample(using: &random), by: vae.config.scalingFactor)
    }

    /// Latents to an 8-bit RGB image through the VAE decoder.
    public func decode(_ latents: Tensor) throws -> RGBImage {
        try RGBImage(decoded: try vae.decode(scaled(latents, by: 1 / vae.config.scalingFactor)))
    }

    /// A prompt in, an image out.
    public func generate(_ request: GenerationRequest,
                         progress: (GenerationProgress) -> Bool = { _ in true }) throws -> RGBImage {
        try decode(try generateLatents(request, progress: progress))
    }
}
