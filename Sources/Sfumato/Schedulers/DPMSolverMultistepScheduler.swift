import Foundation

/// DPM-Solver++ multistep (2M by default), equal to diffusers' `DPMSolverMultistepScheduler`
/// with algorithm_type "dpmsolver++", solver_type "midpoint" and solver_order 1 or 2, including
/// its lower-order warm-up and final steps, Karras sigmas and final_sigmas_type.
public struct DPMSolverMultistepScheduler: Scheduler {
    /// Integer train timesteps, as diffusers' int64 schedule.
    public let timesteps: [Double]
    /// Noise levels of the run, one more than `timesteps` (0 or sigma_min after the last step).
    public let sigmas: [Float]
    public let initNoiseSigma: Float = 1
    let predictionType: PredictionType
    let solverOrder: Int
    let lowerOrderFinal: Bool
    let eulerAtFinal: Bool
    let finalSigmasType: FinalSigmasType
    /// The x0 prediction of the previous step: the history of the second-order update.
    private var previousOriginal: Tensor?
    /// How many steps have run, capped at the solver order (diffusers' lower_order_nums).
    private var lowerOrderCount = 0

    /// `karras` switches Karras sigmas on as `use_karras_sigmas` in the config does.
    public init(config: SchedulerConfig, steps: Int, karras: Bool = false) throws(SchedulerError) {
        try config.validate()
        guard config.algorithmType == "dpmsolver++" else {
            throw .unsupported(key: "algorithm_type", value: config.algorithmType)
        }
        guard config.solverOrder == 1 || config.solverOrder == 2 else {
            throw .unsupported(key: "solver_order", value: String(config.solverOrder))
        }
        // diffusers maps the UniPC/DEIS names onto midpoint.
        guard ["midpoint", "logrho", "bh1", "bh2"].contains(config.solverType) else {
            throw .unsupported(key: "solver_type", value: config.solverType)
        }
        if let variance = config.varianceType, variance == "learned" || variance == "learned_range" {
            throw .unsupported(key: "variance_type", value: variance)
        }
        let trainSteps = config.numTrainTimesteps
        guard steps >= 1, steps <= trainSteps else {
            throw .invalidSteps(steps, reason: "must lie in 1...\(trainSteps) (num_train_timesteps)")
        }
        let trainSigmas = config.trainSigmas
        var timesteps: [Double]
        var sigmas: [Double]
        if karras || config.useKarrasSigmas {
            // The whole training range, sigma_max down to sigma_min (config sigma_min/max are not DPM keys).
            sigmas = SchedulerConfig.karrasSigmas(minimum: Double(trainSigmas[0]),
                                                  maximum: Double(trainSigmas[trainSteps - 1]), count: steps)
            let logSigmas = trainSigmas.map { log($0) }
            // Rounded to integers, except the cosine schedule whose fractions the int64 cast truncates.
            let rule: FloatingPointRoundingRule = config.betaSchedule == .squaredCosCapV2 ? .towardZero : .toNearestOrEven
            timesteps = sigmas.map { SchedulerConfig.timestep(forSigma: $0, logSigmas: logSigmas).rounded(rule) }
        } else {
            timesteps = Self.spacedTimesteps(config: config, steps: steps)
            // Too many steps for the spacing repeat a timestep: h = 0 there and diffusers' update divides 0 by 0.
            if let repeated = zip(timesteps, timesteps.dropFirst()).first(where: { $0.1 >= $0.0 }) {
                throw .invalidSteps(steps, reason: "timestep \(repeated.1) repeats with \(config.timestepSpacing ?? .linspace) spacing")
            }
            sigmas = timesteps.map { SchedulerConfig.interpolate($0, table: trainSigmas) }
        }
        let finalSigma: Float = config.finalSigmasType == .sigmaMin ? trainSigmas[0] : 0
        self.timesteps = timesteps
        self.sigmas = sigmas.map { Float($0) } + [finalSigma]
        predictionType = config.predictionType
        solverOrder = config.solverOrder
        lowerOrderFinal = config.lowerOrderFinal
        eulerAtFinal = config.eulerAtFinal
        finalSigmasType = config.finalSigmasType
    }

    /// DPM-Solver's own spacing: linspace and leading divide into steps + 1 intervals and drop t = 0;
    /// all of them stop below the timestep where lambda falls under lambda_min_clipped.
    static func spacedTimesteps(config: SchedulerConfig, steps: Int) -> [Double] {
        let trainSteps = config.numTrainTimesteps
        var lastTimestep = trainSteps
        if config.lambdaMinClipped > -Double.infinity {
            // lambda = log(alpha) - log(sigma) falls with t; count the clipped tail (torch.searchsorted).
            let clipped = config.alphasCumprod.filter { alphaProduct in
                let lambda = log(alphaProduct.squareRoot()) - log((1 - alphaProduct).squareRoot())
                return Double(lambda) < config.lambdaMinClipped
            }.count
            lastTimestep = trainSteps - clipped
        }
        switch config.timestepSpacing ?? .linspace {
        case .linspace:
            let values = SchedulerConfig.numpyLinspace(0, Double(lastTimestep - 1), count: steps + 1)
            return values.dropFirst().reversed().map { $0.rounded(.toNearestOrEven) }
        case .leading:
            let ratio = lastTimestep / (steps + 1)
            return (1...steps).reversed().map { Double($0 * ratio + config.stepsOffset) }
        case .trailing:
            return SchedulerConfig.numpyTrailing(trainSteps: trainSteps, steps: steps, start: lastTimestep).map { $0 - 1 }
        }
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor { sample }

    /// alpha_t * x0 + sigma_t * noise at the step's sigma.
    public func addNoise(_ original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        let (alpha, sigma) = alphaSigma(sigmas[stepIndex])
        return LatentMath.map(original, noise) { x, z in alpha * x + sigma * z }
    }

    public mutating func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor,
                              random: inout any RandomSource) -> SchedulerStep {
        precondition(timesteps.indices.contains(stepIndex), "DPM-Solver step \(stepIndex) outside 0..<\(timesteps.count)")
        let count = timesteps.count
        let original = convertModelOutput(modelOutput, stepIndex: stepIndex, sample: sample)
        let isLast = stepIndex == count - 1
        let finalFirstOrder = isLast && (eulerAtFinal || (lowerOrderFinal && count < 15) || finalSigmasType == .zero)
        let next: Tensor
        if let previous = previousOriginal, solverOrder == 2, lowerOrderCount >= 1, !finalFirstOrder, stepIndex >= 1 {
            next = secondOrderUpdate(original, previous, stepIndex: stepIndex, sample: sample)
        } else {
            next = firstOrderUpdate(original, stepIndex: stepIndex, sample: sample)
        }
        previousOriginal = original
        lowerOrderCount = min(lowerOrderCount + 1, solverOrder)
        return SchedulerStep(prevSample: next, predictedOriginal: original)
    }

    /// alpha_t = 1 / sqrt(sigma^2 + 1) and sigma_t = sigma * alpha_t (variance-preserving form), float32.
    private func alphaSigma(_ sigma: Float) -> (alpha: Float, sigma: Float) {
        let alpha = 1 / (sigma * sigma + 1).squareRoot()
        return (alpha, sigma * alpha)
    }

    private func lambda(_ alpha: Float, _ sigma: Float) -> Float { log(alpha) - log(sigma) }

    /// DPM-Solver++ integrates the data prediction: the model output turned into x0.
    private func convertModelOutput(_ modelOutput: Tensor, stepIndex: Int, sample: Tensor) -> Tensor {
        let (alpha, sigma) = alphaSigma(sigmas[stepIndex])
        switch predictionType {
        case .epsilon:
            return LatentMath.map(sample, modelOutput) { x, epsilon in (x - sigma * epsilon) / alpha }
        case .vPrediction:
            return LatentMath.map(sample, modelOutput) { x, v in alpha * x - sigma * v }
        case .sample:
            precondition(modelOutput.shape == sample.shape, "scheduler inputs of shapes \(modelOutput.shape) and \(sample.shape)")
            return modelOutput
        }
    }

    private func firstOrderUpdate(_ original: Tensor, stepIndex: Int, sample: Tensor) -> Tensor {
        let (alphaT, sigmaT) = alphaSigma(sigmas[stepIndex + 1])
        let (alphaS, sigmaS) = alphaSigma(sigmas[stepIndex])
        // At a final sigma of 0, lambda_t = inf and the update returns x0 exactly (IEEE inf arithmetic).
        let h = lambda(alphaT, sigmaT) - lambda(alphaS, sigmaS)
        let sampleScale = sigmaT / sigmaS
        let originalScale = alphaT * (exp(-h) - 1)
        return LatentMath.map(sample, original) { x, x0 in sampleScale * x - originalScale * x0 }
    }

    /// Midpoint second-order multistep update from the x0 predictions of this and the previous step.
    private func secondOrderUpdate(_ original: Tensor, _ previous: Tensor, stepIndex: Int, sample: Tensor) -> Tensor {
        let (alphaT, sigmaT) = alphaSigma(sigmas[stepIndex + 1])
        let (alphaS0, sigmaS0) = alphaSigma(sigmas[stepIndex])
        let (alphaS1, sigmaS1) = alphaSigma(sigmas[stepIndex - 1])
        let lambdaT = lambda(alphaT, sigmaT), lambdaS0 = lambda(alphaS0, sigmaS0), lambdaS1 = lambda(alphaS1, sigmaS1)
        let h = lambdaT - lambdaS0
        let r0 = (lambdaS0 - lambdaS1) / h
        let differenceScale = 1 / r0
        let sampleScale = sigmaT / sigmaS0
        let originalScale = alphaT * (exp(-h) - 1)
        let halfScale = 0.5 * originalScale
        return LatentMath.map(sample, original, previous) { x, m0, m1 in
            sampleScale * x - originalScale * m0 - halfScale * (differenceScale * (m0 - m1))
        }
    }
}
