/// Latent consistency model sampling, equal to diffusers' `LCMScheduler`: each step maps the sample
/// straight to a clean estimate (the consistency function's boundary condition, c_skip x + c_out x0)
/// and, but for the last step, noises it again to the next timestep with fresh noise.
public struct LCMScheduler: Scheduler {
    /// Integer train timesteps picked from the distillation schedule (`original_inference_steps`).
    public let timesteps: [Double]
    public let initNoiseSigma: Float = 1
    private let alphasCumprod: [Float]
    private let predictionType: PredictionType
    private let clipRange: Float?
    private let timestepScaling: Float

    public init(config: SchedulerConfig, steps: Int) throws(SchedulerError) {
        try config.validate()
        timesteps = try consistencyTimesteps(config: config, steps: steps)
        alphasCumprod = config.alphasCumprod
        predictionType = config.predictionType
        clipRange = config.clipSample ?? false ? Float(config.clipSampleRange) : nil
        timestepScaling = Float(config.timestepScaling)
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor { sample }

    public func addNoise(_ original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        varianceAddNoise(original, noise: noise, alphaCumprod: alphasCumprod[Int(timesteps[stepIndex])])
    }

    /// Draws one `random.normal(shape: modelOutput.shape)` per step except the last, as diffusers does.
    /// The reported x0 is the denoised estimate (the run's result after the last step).
    public mutating func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor,
                              random: inout any RandomSource) -> SchedulerStep {
        precondition(timesteps.indices.contains(stepIndex), "LCM step \(stepIndex) outside 0..<\(timesteps.count)")
        let t = Int(timesteps[stepIndex])
        let isLast = stepIndex == timesteps.count - 1
        let alphaProd = alphasCumprod[t]
        let betaProd = 1 - alphaProd
        let sqrtAlpha = alphaProd.squareRoot(), sqrtBeta = betaProd.squareRoot()
        // Boundary condition scalings with sigma_data 0.5, in float32.
        let scaled = Float(t) * timestepScaling
        let skip = 0.25 / (scaled * scaled + 0.25)
        let out = scaled / (scaled * scaled + 0.25).squareRoot()

        var original: Tensor
        switch predictionType {
        case .epsilon: original = LatentMath.map(sample, modelOutput) { x, e in (x - sqrtBeta * e) / sqrtAlpha }
        case .sample: original = modelOutput
        case .vPrediction: original = LatentMath.map(sample, modelOutput) { x, v in sqrtAlpha * x - sqrtBeta * v }
        }
        if let clipRange { original = LatentMath.map(original) { LatentMath.clamp($0, clipRange) } }
        let denoised = LatentMath.map(original, sample) { x0, x in out * x0 + skip * x }
        guard !isLast else { return SchedulerStep(prevSample: denoised, predictedOriginal: denoised) }
        let alphaPrev = alphasCumprod[Int(timesteps[stepIndex + 1])]
        let signal = alphaPrev.squareRoot(), deviation = (1 - alphaPrev).squareRoot()
        let noise = random.normal(shape: modelOutput.shape)
        let next = LatentMath.map(denoised, noise) { x0, z in signal * x0 + deviation * z }
        return SchedulerStep(prevSample: next, predictedOriginal: denoised)
    }
}

/// The timesteps of LCM and TCD: the distillation schedule of `original_inference_steps` evenly
/// spaced train timesteps (k - 1, 2k - 1, ..., k = T // original steps), `steps` of them picked from
/// the top at floor(i * count / steps).
func consistencyTimesteps(config: SchedulerConfig, steps: Int) throws(SchedulerError) -> [Double] {
    let original = config.originalInferenceSteps
    guard original >= 1, original <= config.numTrainTimesteps else {
        throw .invalid(key: "original_inference_steps", reason: "\(original) is outside 1...\(config.numTrainTimesteps)")
    }
    guard steps >= 1, steps <= original else {
        throw .invalidSteps(steps, reason: "must lie in 1...\(original) (original_inference_steps, the distillation schedule)")
    }
    guard config.timestepScaling.isFinite, config.timestepScaling > 0 else {
        throw .invalid(key: "timestep_scaling", reason: "\(config.timestepScaling) must be positive")
    }
    let k = config.numTrainTimesteps / original
    let schedule = (1...original).reversed().map { $0 * k - 1 }
    let stride = Double(original) / Double(steps)
    return (0..<steps).map { Double(schedule[Int((Double($0) * stride).rounded(.down))]) }
}
