/// PNDM as diffusers' `PNDMScheduler`: a fourth-order linear multistep method (PLMS) on the
/// model's noise predictions. With `skip_prk_steps` (the Stable Diffusion 1.x default) it warms
/// up with one repeated step; without, with three Runge-Kutta steps of four model calls each.
public struct PNDMScheduler: Scheduler {
    /// With skip_prk_steps one more entry than inference steps (the second timestep repeats);
    /// otherwise 12 Runge-Kutta entries over the first 4 intervals, then the other steps.
    public let timesteps: [Double]
    public let initNoiseSigma: Float = 1
    private let alphasCumprod: [Float]
    private let finalAlphaCumprod: Float
    private let stepRatio: Int
    private let predictionType: PredictionType
    /// The last (up to) four noise predictions, newest last.
    private var history: [Tensor] = []
    /// The sample the current warm-up step restarts from.
    private var firstSample: Tensor?
    /// Runge-Kutta sub-steps before PLMS takes over: 12, or 0 with skip_prk_steps.
    private let rungeKuttaSteps: Int
    /// Half an inference interval, the Runge-Kutta midpoint offset.
    private let halfRatio: Int
    /// The Runge-Kutta weighted sum of the current step's model outputs so far.
    private var rungeKuttaSum: Tensor?
    private var counter = 0

    public init(config: SchedulerConfig, steps: Int) throws(SchedulerError) {
        try config.validate()
        if config.predictionType == .sample { throw .unsupported(key: "prediction_type", value: "sample") }
        let spaced = try config.spacedTimesteps(steps: steps, spacing: config.timestepSpacing ?? .leading, roundLinspace: true)
        let half = Double(config.numTrainTimesteps / steps / 2)
        halfRatio = Int(half)
        if config.skipPrkSteps {
            // diffusers: ascending [t0 ... t(n-1)] -> [t0 ... t(n-2), t(n-2), t(n-1)], reversed.
            var plms = spaced
            if spaced.count > 1 { plms.insert(spaced[1], at: 1) }
            timesteps = plms
            rungeKuttaSteps = 0
        } else {
            guard spaced.count >= 4 else {
                throw .invalidSteps(steps, reason: "the Runge-Kutta warm-up (skip_prk_steps false) needs at least 4 steps")
            }
            // diffusers: the 4 largest timesteps t and their midpoints t + h give, descending,
            // t3, t2+h, t2+h, t2, t2, t1+h, t1+h, t1, t1, t0+h, t0+h, t0; then PLMS from t0 down.
            let largest = spaced.prefix(4).reversed()
            let points = largest.flatMap { [$0, $0 + half] }.dropLast()
            let doubled = points.flatMap { [$0, $0] }.dropFirst().dropLast()
            timesteps = doubled.reversed() + spaced.dropFirst(3)
            rungeKuttaSteps = 12
        }
        try config.requireTrainTimesteps(timesteps, steps: steps)
        alphasCumprod = config.alphasCumprod
        finalAlphaCumprod = config.setAlphaToOne ?? false ? 1 : alphasCumprod[0]
        stepRatio = config.numTrainTimesteps / steps
        predictionType = config.predictionType
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor { sample }

    public func addNoise(_ original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        varianceAddNoise(original, noise: noise, alphaCumprod: alphasCumprod[Int(timesteps[stepIndex])])
    }

    public mutating func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor, random: inout any RandomSource) -> SchedulerStep {
        precondition(timesteps.indices.contains(stepIndex), "PNDM step \(stepIndex) outside 0..<\(timesteps.count)")
        precondition(modelOutput.shape == sample.shape && history.allSatisfy { $0.shape == sample.shape }
                        && (rungeKuttaSum?.shape ?? sample.shape) == sample.shape,
                     "PNDM inputs change shape within a run")
        if counter < rungeKuttaSteps { return rungeKuttaStep(modelOutput: modelOutput, stepIndex: stepIndex, sample: sample) }
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

    /// One of the four sub-steps of a Runge-Kutta step, as diffusers' `step_prk`: each moves
    /// from the step's start sample; the fourth with the 1/6, 1/3, 1/3, 1/6 weighted output.
    private mutating func rungeKuttaStep(modelOutput: Tensor, stepIndex: Int, sample: Tensor) -> SchedulerStep {
        let phase = counter % 4
        let prevT = Int(timesteps[stepIndex]) - (counter % 2 == 1 ? 0 : halfRatio)
        let t = Int(timesteps[counter / 4 * 4])
        var output = modelOutput
        switch phase {
        case 0:
            rungeKuttaSum = LatentMath.map(modelOutput) { Float(1.0 / 6.0) * $0 }
            history.append(modelOutput)
            firstSample = sample
        case 1, 2:
            rungeKuttaSum = rungeKuttaSum.map { LatentMath.map($0, modelOutput) { sum, m in sum + Float(1.0 / 3.0) * m } }
        default:
            output = rungeKuttaSum.map { LatentMath.map($0, modelOutput) { sum, m in sum + Float(1.0 / 6.0) * m } } ?? modelOutput
            rungeKuttaSum = nil
        }
        counter += 1
        return previous(sample: firstSample ?? sample, t: t, prevT: prevT, modelOutput: output)
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
