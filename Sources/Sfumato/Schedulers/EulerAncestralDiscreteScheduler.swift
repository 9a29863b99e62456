import Foundation

/// Ancestral Euler sampler, equal to diffusers' `EulerAncestralDiscreteScheduler`: an Euler
/// step down to sigma_down, then fresh noise of scale sigma_up. Like diffusers it reads no
/// Karras, interpolation or final-sigma keys from the config.
public struct EulerAncestralDiscreteScheduler: Scheduler {
    public let timesteps: [Double]
    /// Noise levels of the run, one more than `timesteps` (0 after the last step).
    public let sigmas: [Float]
    public let initNoiseSigma: Float
    let predictionType: PredictionType

    public init(config: SchedulerConfig, steps: Int) throws(SchedulerError) {
        try config.validate()
        guard config.predictionType != .sample else {
            // diffusers raises NotImplementedError for it at the first step.
            throw .unsupported(key: "prediction_type", value: config.predictionType.rawValue)
        }
        let spacing = config.timestepSpacing ?? .linspace
        timesteps = try config.spacedTimesteps(steps: steps, spacing: spacing, roundLinspace: false)
        let trainSigmas = config.trainSigmas
        sigmas = timesteps.map { Float(SchedulerConfig.interpolate($0, table: trainSigmas)) } + [0]
        predictionType = config.predictionType
        initNoiseSigma = eulerInitNoiseSigma(sigmas: sigmas, spacing: spacing)
    }

    public func addNoise(_ original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        sigmaAddNoise(original, noise: noise, sigma: sigmas[stepIndex])
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor {
        eulerScaleModelInput(sample, sigma: sigmas[stepIndex])
    }

    /// Draws one `random.normal(shape: modelOutput.shape)` per call, the last step included, as diffusers does.
    public mutating func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor,
                              random: inout any RandomSource) -> SchedulerStep {
        precondition(timesteps.indices.contains(stepIndex), "Euler ancestral step \(stepIndex) outside 0..<\(timesteps.count)")
        let sigma = sigmas[stepIndex]
        let sigmaNext = sigmas[stepIndex + 1]
        let original = eulerPredictOriginal(modelOutput: modelOutput, sample: sample, sigma: sigma, predictionType: predictionType)
        // Split the move to sigmaNext into a deterministic part (down) and injected noise (up),
        // in float32 and in diffusers' operation order.
        let sigmaSquared = sigma * sigma, nextSquared = sigmaNext * sigmaNext
        let sigmaUp = (nextSquared * (sigmaSquared - nextSquared) / sigmaSquared).squareRoot()
        let sigmaDown = (nextSquared - sigmaUp * sigmaUp).squareRoot()
        let dt = sigmaDown - sigma
        let noise = random.normal(shape: modelOutput.shape)
        let next = LatentMath.map(sample, original, noise) { x, x0, z in (x + (x - x0) / sigma * dt) + z * sigmaUp }
        return SchedulerStep(prevSample: next, predictedOriginal: original)
    }
}
