/// Trajectory consistency distillation sampling (strategic stochastic sampling), equal to diffusers'
/// `TCDScheduler`: each step estimates x0 and the noise, moves to an intermediate timestep
/// s = floor((1 - gamma) * t_prev) and, with gamma > 0, noises from s up to the next timestep.
/// gamma 0 is deterministic; 1 is LCM's multistep sampling.
public struct TCDScheduler: Scheduler {
    /// The stochasticity TCD's authors recommend (diffusers' `eta` default of `TCDScheduler.step`).
    public static let defaultGamma = 0.3

    /// Integer train timesteps from the distillation schedule, as LCM's.
    public let timesteps: [Double]
    public let initNoiseSigma: Float = 1
    private let alphasCumprod: [Float]
    private let predictionType: PredictionType
    private let gamma: Double

    public init(config: SchedulerConfig, steps: Int) throws(SchedulerError) {
        try self.init(config: config, steps: steps, gamma: Self.defaultGamma)
    }

    /// `gamma` in [0, 1] (diffusers' `eta` argument of `step`).
    public init(config: SchedulerConfig, steps: Int, gamma: Double) throws(SchedulerError) {
        try config.validate()
        guard gamma.isFinite, gamma >= 0, gamma <= 1 else { throw .invalid(key: "gamma", reason: "\(gamma) is outside [0, 1]") }
        timesteps = try consistencyTimesteps(config: config, steps: steps)
        alphasCumprod = config.alphasCumprod
        predictionType = config.predictionType
        self.gamma = gamma
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor { sample }

    public func addNoise(_ original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        varianceAddNoise(original, noise: noise, alphaCumprod: alphasCumprod[Int(timesteps[stepIndex])])
    }

    /// With gamma > 0, draws one `random.normal(shape: modelOutput.shape)` per step except the last.
    public mutating func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor,
                              random: inout any RandomSource) -> SchedulerStep {
        precondition(timesteps.indices.contains(stepIndex), "TCD step \(stepIndex) outside 0..<\(timesteps.count)")
        let t = Int(timesteps[stepIndex])
        let isLast = stepIndex == timesteps.count - 1
        let prevT = isLast ? 0 : Int(timesteps[stepIndex + 1])
        // float32, as torch multiplies the int64 timestep by the Python float.
        let s = Int((Float(1 - gamma) * Float(prevT)).rounded(.down))
        let alphaProd = alphasCumprod[t], alphaPrev = alphasCumprod[prevT], alphaS = alphasCumprod[s]
        let sqrtAlpha = alphaProd.squareRoot(), sqrtBeta = (1 - alphaProd).squareRoot()
        let sqrtAlphaS = alphaS.squareRoot(), sqrtBetaS = (1 - alphaS).squareRoot()

        let original: Tensor, epsilon: Tensor
        switch predictionType {
        case .epsilon:
            original = LatentMath.map(sample, modelOutput) { x, e in (x - sqrtBeta * e) / sqrtAlpha }
            epsilon = modelOutput
        case .sample:
            original = modelOutput
            epsilon = LatentMath.map(sample, modelOutput) { x, x0 in (x - sqrtAlpha * x0) / sqrtBeta }
        case .vPrediction:
            original = LatentMath.map(sample, modelOutput) { x, v in sqrtAlpha * x - sqrtBeta * v }
            epsilon = LatentMath.map(sample, modelOutput) { x, v in sqrtAlpha * v + sqrtBeta * x }
        }
        let noised = LatentMath.map(original, epsilon) { x0, e in sqrtAlphaS * x0 + sqrtBetaS * e }
        guard gamma > 0, !isLast else { return SchedulerStep(prevSample: noised, predictedOriginal: original) }
        let ratio = alphaPrev / alphaS
        let signal = ratio.squareRoot(), deviation = (1 - ratio).squareRoot()
        let noise = random.normal(shape: modelOutput.shape)
        let next = LatentMath.map(noised, noise) { x, z in signal * x + deviation * z }
        return SchedulerStep(prevSample: next, predictedOriginal: original)
    }
}
