import Foundation

/// Heun's second-order sampler (Karras et al. 2022, Algorithm 1 without churn), equal to diffusers'
/// `HeunDiscreteScheduler`: every step but the last evaluates the model twice, an Euler step to the
/// next sigma and a correction with the mean of both slopes. `timesteps` holds both evaluations
/// (2 * steps - 1 entries), each `step` call is one of them.
public struct HeunDiscreteScheduler: Scheduler {
    public let timesteps: [Double]
    /// One per entry of `timesteps` plus the final 0: sigma_0, sigma_1, sigma_1, sigma_2, sigma_2, ..., 0.
    public let sigmas: [Float]
    public let initNoiseSigma: Float
    public var order: Int { 2 }
    let predictionType: PredictionType
    let clipRange: Float?
    /// Between the two evaluations of a step: the first slope, the step size and the sample it started from.
    private var firstStage: (derivative: Tensor, dt: Float, sample: Tensor)?

    public init(config: SchedulerConfig, steps: Int) throws(SchedulerError) {
        try config.validate()
        let spacing = config.timestepSpacing ?? .linspace
        let schedule = try kDiffusionSchedule(config: config, steps: steps, spacing: spacing, float32Linspace: true)
        // Model timesteps in float32, as diffusers stores them.
        let perStep = schedule.timesteps.map { Double(Float($0)) }
        timesteps = interleavedForSecondOrder(perStep, second: perStep.dropFirst())
        let perStepSigmas = schedule.sigmas.map { Float($0) }
        sigmas = interleavedForSecondOrder(perStepSigmas, second: perStepSigmas.dropFirst()) + [0]
        initNoiseSigma = eulerInitNoiseSigma(sigmas: sigmas, spacing: spacing)
        predictionType = config.predictionType
        clipRange = config.clipSample ?? false ? Float(config.clipSampleRange) : nil
    }

    public func addNoise(_ original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        sigmaAddNoise(original, noise: noise, sigma: sigmas[stepIndex])
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor {
        eulerScaleModelInput(sample, sigma: sigmas[stepIndex])
    }

    public mutating func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor,
                              random: inout any RandomSource) -> SchedulerStep {
        precondition(timesteps.indices.contains(stepIndex), "Heun step \(stepIndex) outside 0..<\(timesteps.count)")
        if let first = firstStage {
            // Second evaluation, at the next sigma: average the slopes and redo the step from its start.
            let sigmaNext = sigmas[stepIndex]
            let original = clipped(eulerPredictOriginal(modelOutput: modelOutput, sample: sample, sigma: sigmaNext,
                                                        predictionType: predictionType))
            let dt = first.dt
            let averaged = LatentMath.map(sample, original, first.derivative) { x, x0, d0 in (d0 + (x - x0) / sigmaNext) / 2 }
            firstStage = nil
            return SchedulerStep(prevSample: LatentMath.map(first.sample, averaged) { x, d in x + d * dt }, predictedOriginal: original)
        }
        let sigma = sigmas[stepIndex]
        let original = clipped(eulerPredictOriginal(modelOutput: modelOutput, sample: sample, sigma: sigma, predictionType: predictionType))
        let derivative = LatentMath.map(sample, original) { x, x0 in (x - x0) / sigma }
        let dt = sigmas[stepIndex + 1] - sigma
        // The last step ends at sigma 0: a plain Euler step, no second evaluation.
        if stepIndex + 1 < timesteps.count { firstStage = (derivative, dt, sample) }
        return SchedulerStep(prevSample: LatentMath.map(sample, derivative) { x, d in x + d * dt }, predictedOriginal: original)
    }

    private func clipped(_ original: Tensor) -> Tensor {
        guard let clipRange else { return original }
        return LatentMath.map(original) { LatentMath.clamp($0, clipRange) }
    }
}

/// The per-step timesteps and sigmas of the k-diffusion style samplers (Heun, DPM++ SDE), in double:
/// spaced train timesteps, their interpolated train sigmas, or Karras sigmas between the ends of that
/// schedule (these classes read no sigma_min/sigma_max keys) with their fractional timesteps.
/// `float32Linspace`: Heun's linspace is float32 (as Euler's); DPM++ SDE's stays in double.
func kDiffusionSchedule(config: SchedulerConfig, steps: Int, spacing: TimestepSpacing,
                        float32Linspace: Bool) throws(SchedulerError) -> (timesteps: [Double], sigmas: [Double]) {
    var timesteps = try config.spacedTimesteps(steps: steps, spacing: spacing, roundLinspace: false)
    if spacing == .linspace, !float32Linspace {
        timesteps = SchedulerConfig.numpyLinspace(0, Double(config.numTrainTimesteps - 1), count: steps).reversed()
    }
    let trainSigmas = config.trainSigmas
    var sigmas = timesteps.map { SchedulerConfig.interpolate($0, table: trainSigmas) }
    if config.useKarrasSigmas {
        sigmas = SchedulerConfig.karrasSigmas(minimum: sigmas[sigmas.count - 1], maximum: sigmas[0], count: steps)
        let logSigmas = trainSigmas.map { log($0) }
        timesteps = sigmas.map { SchedulerConfig.timestep(forSigma: $0, logSigmas: logSigmas) }
    }
    return (timesteps, sigmas)
}

/// diffusers' layout of second-order schedules: the first entry, then for every later step the
/// second evaluation of the step before (`second`) and the first of this one.
func interleavedForSecondOrder<T>(_ first: [T], second: ArraySlice<T>) -> [T] {
    precondition(second.count == first.count - 1, "\(second.count) second-stage entries for \(first.count) steps")
    var result = [first[0]]
    for (later, stage) in zip(first.dropFirst(), second) { result += [stage, later] }
    return result
}
