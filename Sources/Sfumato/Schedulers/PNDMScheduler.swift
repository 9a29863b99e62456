/// PNDM as diffusers' `PNDMScheduler` with `skip_prk_steps` (PLMS, the Stable Diffusion 1.x
/// default): a fourth-order linear multistep method on the model's noise predictions.
/// The Runge-Kutta warm-up (`skip_prk_steps: false`) is not implemented and is refused.
public struct PNDMScheduler: Scheduler {
    /// One more entry than inference steps: the second timestep repeats (the warm-up step).
    public let timesteps: [Double]
    public let initNoiseSigma: Float = 1
    private let alphasCumprod: [Float]
    private let finalAlphaCumprod: Float
    private let stepRatio: Int
    private let predictionType: PredictionType
    /// The last (up to) four noise predictions, newest last.
    private var history: [Tensor] = []
    /// The first step's sample, which the warm-up step restarts from.
    private var firstSample: Tensor?
    private var counter = 0

    public init(config: SchedulerConfig, steps: Int) throws(SchedulerError) {
        try config.validate()
        guard config.skipPrkSteps else { throw .unsupported(key: "skip_prk_steps", value: "false") }
        if config.predictionType == .sample { throw .unsupported(key: "prediction_type", value: "sample") }
        let spaced = try config.spacedTimesteps(steps: steps, spacing: config.timestepSpacing ?? .leading, roundLinspace: true)
        try config.requireTrainTimesteps(spaced, steps: steps)
        // diffusers: ascending [t0 ... t(n-1)] -> [t0 ... t(n-2), t(n-2), t(n-1)], reversed.
        var plms = spaced
        if spaced.count > 1 { plms.insert(spaced[1], at: 1) }
        timesteps = plms
        alphasCumprod = config.alphasCumprod
        finalAlphaCumprod = config.setAlphaToOne ?? false ? 1 : alphasCumprod[0]
        stepRatio = config.numTrainTimesteps / steps
        predictionType = config.predictionType
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor { sample }

    public mutating func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor, random: inout any RandomSource) -> SchedulerStep {
        precondition(timesteps.indices.contains(stepIndex), "PNDM step \(stepIndex) outside 0..<\(timesteps.count)")
        precondition(modelOutput.shape == sample.shape && history.allSatisfy { $0.shape == sample.shape },
                     "PNDM inputs change shape within a run")
        var t = Int(timesteps[stepIndex])
        var prevT = t - stepRatio
        if counter != 1 {
            if history.count == 4 { history.removeFirst() }
            history.append(modelOutput)
        } else {
            // The warm-up step re-evaluates the first interval from its start.
            prevT = t
            t += stepRatio
        }

        var input = sample
        let combined: Tensor
        let e = history
        switch e.count {
        case 1 where counter == 0:
            combined = modelOutput
            firstSample = sample
        case 1:
            combined = LatentMath.map(modelOutput, e[0]) { m, e1 in (m + e1) / 2 }
            input = firstSample ?? sample
            firstSample = nil
        case 2:
            combined = LatentMath.map(e[1], e[0]) { e1, e2 in (3 * e1 - e2) / 2 }
        case 3:
            combined = LatentMath.map(e[2], e[1], e[0]) { e1, e2, e3 in (23 * e1 - 16 * e2 + 5 * e3) / 12 }
        default:
            let scale = Float(1.0 / 24.0)
            let out = Tensor(uninitializedShape: e[3].shape)
            let (e1, e2, e3, e4, y) = (e[3].pointer, e[2].pointer, e[1].pointer, e[0].pointer, out.pointer)
            for index in 0..<out.count {
                y[index] = scale * (55 * e1[index] - 59 * e2[index] + 37 * e3[index] - 9 * e4[index])
            }
            combined = out
        }
        counter += 1
        return previous(sample: input, t: t, prevT: prevT, modelOutput: combined)
    }

    /// Formula (9) of the PNDM paper, as diffusers' `_get_prev_sample`.
    private func previous(sample: Tensor, t: Int, prevT: Int, modelOutput: Tensor) -> SchedulerStep {
        let alphaProd = alphasCumprod[t]
        let alphaProdPrev = prevT >= 0 ? alphasCumprod[prevT] : finalAlphaCumprod
        let betaProd = 1 - alphaProd
        let betaProdPrev = 1 - alphaProdPrev
        let sqrtAlpha = alphaProd.squareRoot(), sqrtBeta = betaProd.squareRoot()
        let epsilon = predictionType == .vPrediction
            ? LatentMath.map(modelOutput, sample) { v, x in sqrtAlpha * v + sqrtBeta * x }
            : modelOutput
        let sampleCoefficient = (alphaProdPrev / alphaProd).squareRoot()
        let denominator = alphaProd * betaProdPrev.squareRoot() + (alphaProd * betaProd * alphaProdPrev).squareRoot()
        let difference = alphaProdPrev - alphaProd
        let prev = LatentMath.map(sample, epsilon) { x, e in sampleCoefficient * x - difference * e / denominator }
        // diffusers reports no x0 for PNDM; this is the estimate implied by the combined noise.
        let original = LatentMath.map(sample, epsilon) { x, e in (x - sqrtBeta * e) / sqrtAlpha }
        return SchedulerStep(prevSample: prev, predictedOriginal: original)
    }
}
