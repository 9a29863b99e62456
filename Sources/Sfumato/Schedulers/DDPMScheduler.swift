import Foundation

/// Ancestral DDPM sampling as diffusers' `DDPMScheduler` (variance types fixed_small,
/// fixed_small_log and fixed_large; the learned variances need a UNet SD 1.x does not have).
public struct DDPMScheduler: Scheduler {
    public enum VarianceType: String, Sendable {
        case fixedSmall = "fixed_small"
        case fixedSmallLog = "fixed_small_log"
        case fixedLarge = "fixed_large"
    }

    public let timesteps: [Double]
    public let initNoiseSigma: Float = 1
    private let alphasCumprod: [Float]
    private let predictionType: PredictionType
    private let clipRange: Float?
    private let varianceType: VarianceType

    public init(config: SchedulerConfig, steps: Int) throws(SchedulerError) {
        try config.validate()
        let name = config.varianceType ?? VarianceType.fixedSmall.rawValue
        guard let varianceType = VarianceType(rawValue: name) else { throw .unsupported(key: "variance_type", value: name) }
        self.varianceType = varianceType
        timesteps = try config.spacedTimesteps(steps: steps, spacing: config.timestepSpacing ?? .leading, roundLinspace: true)
        try config.requireTrainTimesteps(timesteps, steps: steps)
        alphasCumprod = config.alphasCumprod
        predictionType = config.predictionType
        clipRange = config.clipSample ?? true ? Float(config.clipSampleRange) : nil
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor { sample }

    public mutating func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor, random: inout any RandomSource) -> SchedulerStep {
        precondition(timesteps.indices.contains(stepIndex), "DDPM step \(stepIndex) outside 0..<\(timesteps.count)")
        let t = Int(timesteps[stepIndex])
        // diffusers steps to the next timestep of the schedule, -1 after the last.
        let prevT = stepIndex + 1 < timesteps.count ? Int(timesteps[stepIndex + 1]) : -1
        let alphaProd = alphasCumprod[t]
        let alphaProdPrev: Float = prevT >= 0 ? alphasCumprod[prevT] : 1
        let betaProd = 1 - alphaProd
        let betaProdPrev = 1 - alphaProdPrev
        let currentAlpha = alphaProd / alphaProdPrev
        let currentBeta = 1 - currentAlpha
        let sqrtAlpha = alphaProd.squareRoot(), sqrtBeta = betaProd.squareRoot()

        var original: Tensor
        switch predictionType {
        case .epsilon: original = LatentMath.map(sample, modelOutput) { x, e in (x - sqrtBeta * e) / sqrtAlpha }
        case .sample: original = modelOutput
        case .vPrediction: original = LatentMath.map(sample, modelOutput) { x, v in sqrtAlpha * x - sqrtBeta * v }
        }
        if let clipRange {
            original = LatentMath.map(original) { LatentMath.clamp($0, clipRange) }
        }

        // Formula (7) of the DDPM paper.
        let originalCoefficient = (alphaProdPrev.squareRoot() * currentBeta) / betaProd
        let sampleCoefficient = currentAlpha.squareRoot() * betaProdPrev / betaProd
        var prev = LatentMath.map(original, sample) { x0, x in originalCoefficient * x0 + sampleCoefficient * x }

        if t > 0 {
            // diffusers draws the noise only for t > 0, after the mean.
            let noise = random.normal(shape: modelOutput.shape)
            let deviation = standardDeviation(alphaProd: alphaProd, alphaProdPrev: alphaProdPrev)
            prev = LatentMath.map(prev, noise) { x, z in x + deviation * z }
        }
        return SchedulerStep(prevSample: prev, predictedOriginal: original)
    }

    public func addNoise(_ original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        varianceAddNoise(original, noise: noise, alphaCumprod: alphasCumprod[Int(timesteps[stepIndex])])
    }

    /// The noise scale, as diffusers' `_get_variance` (clamped at 1e-20) and its use in `step`.
    private func standardDeviation(alphaProd: Float, alphaProdPrev: Float) -> Float {
        let currentBeta = 1 - alphaProd / alphaProdPrev
        let variance = max((1 - alphaProdPrev) / (1 - alphaProd) * currentBeta, 1e-20)
        switch varianceType {
        case .fixedSmall: return variance.squareRoot()
        case .fixedSmallLog: return expf(0.5 * logf(variance))
        case .fixedLarge: return currentBeta.squareRoot()
        }
    }
}

/// sqrt(abar_t) * x0 + sqrt(1 - abar_t) * noise: the add_noise of DDPM, DDIM and PNDM (float32, torch's order).
func varianceAddNoise(_ original: Tensor, noise: Tensor, alphaCumprod: Float) -> Tensor {
    let signal = alphaCumprod.squareRoot(), deviation = (1 - alphaCumprod).squareRoot()
    return LatentMath.map(original, noise) { x, z in signal * x + deviation * z }
}

extension SchedulerConfig {
    /// The forward process q(x_t | x_0) at train timestep `timestep`: sqrt(abar_t) x0 + sqrt(1 - abar_t) noise,
    /// as diffusers' `DDPMScheduler.add_noise` (what `sfumato noise` shows).
    public func forwardProcess(_ original: Tensor, noise: Tensor, timestep: Int) throws(SchedulerError) -> Tensor {
        guard (0..<numTrainTimesteps).contains(timestep) else {
            throw .invalid(key: "timestep", reason: "\(timestep) is outside 0...\(numTrainTimesteps - 1) (num_train_timesteps)")
        }
        return varianceAddNoise(original, noise: noise, alphaCumprod: alphasCumprod[timestep])
    }
}
