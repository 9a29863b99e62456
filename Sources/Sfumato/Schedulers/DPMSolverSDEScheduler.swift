import Foundation

/// DPM-Solver++ SDE (k-diffusion's `sample_dpmpp_sde`, A1111's "DPM++ SDE"), equal to diffusers'
/// `DPMSolverSDEScheduler` step for step except for where the noise comes from: each step evaluates
/// the model at sigma and at the midpoint (in log sigma) towards the next sigma, and each of the two
/// half updates adds fresh noise.
///
/// diffusers draws that noise from a torchsde Brownian tree seeded apart from the run's generator;
/// Sfumato draws it as one `random.normal` per update from the run's random source (the noise of
/// k-diffusion's default sampler). Same seed, same model: the sampler and its schedule are diffusers',
/// the noise values are not, so images differ from diffusers' in their detail.
public struct DPMSolverSDEScheduler: Scheduler {
    /// Two entries per step but the last: the step's timestep, then its midpoint's (fractional, double).
    public let timesteps: [Double]
    /// sigma_0, sigma_1, sigma_1, sigma_2, ..., 0 (as Heun's).
    public let sigmas: [Float]
    public let initNoiseSigma: Float
    public var order: Int { 2 }
    let predictionType: PredictionType
    /// Between the two evaluations of a step: the sample it started from and the midpoint sigma.
    private var firstStage: (sample: Tensor, midpointSigma: Float)?

    public init(config: SchedulerConfig, steps: Int) throws(SchedulerError) {
        try config.validate()
        guard config.predictionType != .sample else {
            // diffusers raises NotImplementedError at the first step.
            throw .unsupported(key: "prediction_type", value: config.predictionType.rawValue)
        }
        let spacing = config.timestepSpacing ?? .linspace
        let schedule = try kDiffusionSchedule(config: config, steps: steps, spacing: spacing, float32Linspace: false)
        let logSigmas = config.trainSigmas.map { log($0) }
        // Midpoints between consecutive sigmas in t = -log(sigma), in double as numpy computes them.
        let midpoints = zip(schedule.sigmas, schedule.sigmas.dropFirst()).map { sigma, next in
            let t = -log(sigma), tNext = -log(next)
            return SchedulerConfig.timestep(forSigma: exp(-(t + (tNext - t) * 0.5)), logSigmas: logSigmas)
        }
        timesteps = interleavedForSecondOrder(schedule.timesteps, second: midpoints[...])
        let perStepSigmas = schedule.sigmas.map { Float($0) }
        sigmas = interleavedForSecondOrder(perStepSigmas, second: perStepSigmas.dropFirst()) + [0]
        initNoiseSigma = eulerInitNoiseSigma(sigmas: sigmas, spacing: spacing)
        predictionType = config.predictionType
    }

    public func addNoise(_ original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        sigmaAddNoise(original, noise: noise, sigma: sigmas[stepIndex])
    }

    /// The midpoint evaluation sees the sample scaled for the midpoint sigma.
    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor {
        eulerScaleModelInput(sample, sigma: firstStage?.midpointSigma ?? sigmas[stepIndex])
    }

    /// Draws one `random.normal(shape: modelOutput.shape)` per call, except for the last (which ends at sigma 0).
    public mutating func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor,
                              random: inout any RandomSource) -> SchedulerStep {
        precondition(timesteps.indices.contains(stepIndex), "DPM++ SDE step \(stepIndex) outside 0..<\(timesteps.count)")
        // float32 throughout, in diffusers' operation order.
        let secondStage = firstStage
        let sigma = secondStage == nil ? sigmas[stepIndex] : sigmas[stepIndex - 1]
        let sigmaNext = secondStage == nil ? sigmas[stepIndex + 1] : sigmas[stepIndex]
        let t = -log(sigma)
        var tNext = -log(sigmaNext)
        let tProposed = t + (tNext - t) * 0.5
        let sigmaInput = secondStage == nil ? sigma : exp(-tProposed)
        let original = eulerPredictOriginal(modelOutput: modelOutput, sample: sample, sigma: sigmaInput, predictionType: predictionType)
        if sigmaNext == 0 {
            let dt = sigmaNext - sigma
            firstStage = nil
            let next = LatentMath.map(sample, original) { x, x0 in x + (x - x0) / sigma * dt }
            return SchedulerStep(prevSample: next, predictedOriginal: original)
        }
        if secondStage == nil { tNext = tProposed }
        let start = secondStage?.sample ?? sample
        let sigmaFrom = exp(-t), sigmaTo = exp(-tNext)
        let fromSquared = sigmaFrom * sigmaFrom, toSquared = sigmaTo * sigmaTo
        let sigmaUp = min(sigmaTo, (toSquared * (fromSquared - toSquared) / fromSquared).squareRoot())
        let sigmaDown = (toSquared - sigmaUp * sigmaUp).squareRoot()
        let ancestralT = -log(sigmaDown)
        let sampleScale = exp(-ancestralT) / exp(-t)
        let originalScale = expm1(t - ancestralT)
        let noise = random.normal(shape: modelOutput.shape)
        let next = LatentMath.map(start, original, noise) { x, x0, z in (sampleScale * x - originalScale * x0) + z * sigmaUp }
        firstStage = secondStage == nil ? (sample, exp(-tNext)) : nil
        return SchedulerStep(prevSample: next, predictedOriginal: original)
    }
}
