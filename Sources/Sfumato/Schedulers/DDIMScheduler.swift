/// DDIM sampling as diffusers' `DDIMScheduler` (deterministic for eta 0, the Stable Diffusion default).
public struct DDIMScheduler: Scheduler {
    public let timesteps: [Double]
    public let initNoiseSigma: Float = 1
    private let alphasCumprod: [Float]
    /// alphas_cumprod "before" the first train step: 1 with set_alpha_to_one, else alphas_cumprod[0].
    private let finalAlphaCumprod: Float
    /// diffusers steps back by num_train_timesteps // steps whatever the spacing.
    private let stepRatio: Int
    private let predictionType: PredictionType
    private let clipRange: Float?
    private let eta: Float

    public init(config: SchedulerConfig, steps: Int) throws(SchedulerError) {
        try self.init(config: config, steps: steps, eta: 0)
    }

    /// `eta` > 0 adds noise as DDPM does (1 = DDPM's variance), drawn from the step's RandomSource.
    public init(config: SchedulerConfig, steps: Int, eta: Float) throws(SchedulerError) {
        try config.validate()
        guard eta.isFinite, eta >= 0 else { throw .invalid(key: "eta", reason: "\(eta) must be finite and >= 0") }
        timesteps = try config.spacedTimesteps(steps: steps, spacing: config.timestepSpacing ?? .leading, roundLinspace: true)
        try config.requireTrainTimesteps(timesteps, steps: steps)
        alphasCumprod = config.alphasCumprod
        finalAlphaCumprod = config.setAlphaToOne ?? true ? 1 : alphasCumprod[0]
        stepRatio = config.numTrainTimesteps / steps
        predictionType = config.predictionType
        clipRange = config.clipSample ?? true ? Float(config.clipSampleRange) : nil
        self.eta = eta
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor { sample }

    public func addNoise(_ original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        varianceAddNoise(original, noise: noise, alphaCumprod: alphasCumprod[Int(timesteps[stepIndex])])
    }

    public mutating func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor, random: inout any RandomSource) -> SchedulerStep {
        precondition(timesteps.indices.contains(stepIndex), "DDIM step \(stepIndex) outside 0..<\(timesteps.count)")
        let t = Int(timesteps[stepIndex])
        let prevT = t - stepRatio
        let alphaProd = alphasCumprod[t]
        let alphaProdPrev = prevT >= 0 ? alphasCumprod[prevT] : finalAlphaCumprod
        let betaProd = 1 - alphaProd
        let sqrtAlpha = alphaProd.squareRoot(), sqrtBeta = betaProd.squareRoot()

        var original: Tensor
        let epsilon: Tensor
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
        if let clipRange {
            original = LatentMath.map(original) { LatentMath.clamp($0, clipRange) }
        }

        let variance = ((1 - alphaProdPrev) / betaProd) * (1 - alphaProd / alphaProdPrev)
        let stdDev = eta * variance.squareRoot()
        let directionCoefficient = (1 - alphaProdPrev - stdDev * stdDev).squareRoot()
        let sqrtAlphaPrev = alphaProdPrev.squareRoot()
        var prev = LatentMath.map(original, epsilon) { x0, e in sqrtAlphaPrev * x0 + directionCoefficient * e }
        if eta > 0 {
            let noise = random.normal(shape: modelOutput.shape)
            prev = LatentMath.map(prev, noise) { x, z in x + stdDev * z }
        }
        return SchedulerStep(prevSample: prev, predictedOriginal: original)
    }
}
