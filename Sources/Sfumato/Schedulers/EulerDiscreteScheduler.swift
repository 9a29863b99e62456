import Foundation

/// Euler sampler (Karras et al. 2022, Algorithm 2 without churn), equal to diffusers'
/// `EulerDiscreteScheduler` with its default `step` arguments (s_churn 0: deterministic).
public struct EulerDiscreteScheduler: Scheduler {
    public let timesteps: [Double]
    /// Noise levels of the run, one more than `timesteps` (the level after the last step).
    public let sigmas: [Float]
    public let initNoiseSigma: Float
    let predictionType: PredictionType

    public init(config: SchedulerConfig, steps: Int) throws(SchedulerError) {
        try config.validate()
        // Values decoding refuses, checked again for configs built in code.
        guard config.interpolationType == "linear" else {
            throw .unsupported(key: "interpolation_type", value: config.interpolationType)
        }
        guard config.timestepType == "discrete" else { throw .unsupported(key: "timestep_type", value: config.timestepType) }
        let spacing = config.timestepSpacing ?? .linspace
        var timesteps = try config.spacedTimesteps(steps: steps, spacing: spacing, roundLinspace: false)
        let trainSigmas = config.trainSigmas
        var sigmas = timesteps.map { SchedulerConfig.interpolate($0, table: trainSigmas) }
        if config.useKarrasSigmas {
            sigmas = SchedulerConfig.karrasSigmas(minimum: config.sigmaMin ?? sigmas[sigmas.count - 1],
                                                  maximum: config.sigmaMax ?? sigmas[0], count: steps)
            let logSigmas = trainSigmas.map { log($0) }
            // Model timesteps become fractional (float32) train positions of the Karras sigmas.
            timesteps = sigmas.map { Double(Float(SchedulerConfig.timestep(forSigma: $0, logSigmas: logSigmas))) }
        }
        let finalSigma: Float = config.finalSigmasType == .sigmaMin ? trainSigmas[0] : 0
        self.sigmas = sigmas.map { Float($0) } + [finalSigma]
        self.timesteps = timesteps
        self.predictionType = config.predictionType
        self.initNoiseSigma = eulerInitNoiseSigma(sigmas: self.sigmas, spacing: spacing)
    }

    public func addNoise(_ original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        sigmaAddNoise(original, noise: noise, sigma: sigmas[stepIndex])
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor {
        eulerScaleModelInput(sample, sigma: sigmas[stepIndex])
    }

    public mutating func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor,
                              random: inout any RandomSource) -> SchedulerStep {
        precondition(timesteps.indices.contains(stepIndex), "Euler step \(stepIndex) outside 0..<\(timesteps.count)")
        let sigma = sigmas[stepIndex]
        let original = eulerPredictOriginal(modelOutput: modelOutput, sample: sample, sigma: sigma, predictionType: predictionType)
        // x + (x - x0) / sigma * (sigma_next - sigma)
        let dt = sigmas[stepIndex + 1] - sigma
        let next = LatentMath.map(sample, original) { x, x0 in x + (x - x0) / sigma * dt }
        return SchedulerStep(prevSample: next, predictedOriginal: original)
    }
}

/// sigma_max for linspace/trailing spacing, sqrt(sigma_max^2 + 1) for leading (as diffusers, in float32).
func eulerInitNoiseSigma(sigmas: [Float], spacing: TimestepSpacing) -> Float {
    let maximum = sigmas.max() ?? 0
    return spacing == .leading ? (maximum * maximum + 1).squareRoot() : maximum
}

/// x0 + noise * sigma: the add_noise of the sigma-parameterised samplers (Euler, Euler ancestral, LMS).
func sigmaAddNoise(_ original: Tensor, noise: Tensor, sigma: Float) -> Tensor {
    LatentMath.map(original, noise) { x, z in x + z * sigma }
}

/// sample / sqrt(sigma^2 + 1): the variance-preserving input the UNet was trained on.
func eulerScaleModelInput(_ sample: Tensor, sigma: Float) -> Tensor {
    let divisor = (sigma * sigma + 1).squareRoot()
    return LatentMath.map(sample) { $0 / divisor }
}

/// The x0 estimate of the Euler samplers (sigma parameterisation, x = x0 + sigma * eps).
func eulerPredictOriginal(modelOutput: Tensor, sample: Tensor, sigma: Float, predictionType: PredictionType) -> Tensor {
    switch predictionType {
    case .epsilon:
        return LatentMath.map(sample, modelOutput) { x, epsilon in x - sigma * epsilon }
    case .vPrediction:
        // v * -sigma / sqrt(sigma^2 + 1) + x / (sigma^2 + 1)
        let variance = sigma * sigma + 1
        let vScale = -sigma / variance.squareRoot()
        return LatentMath.map(sample, modelOutput) { x, v in v * vScale + x / variance }
    case .sample:
        precondition(modelOutput.shape == sample.shape, "scheduler inputs of shapes \(modelOutput.shape) and \(sample.shape)")
        return modelOutput
    }
}
