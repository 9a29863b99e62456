import Foundation

/// UniPC (Zhao et al. 2023), equal to diffusers' `UniPCMultistepScheduler` in its data-prediction form
/// (predict_x0): a multistep predictor of order 1 to 3 (solver_order) and, from the second step on,
/// a corrector that refines the sample with the model output just computed (no extra evaluation),
/// with bh1/bh2 coefficients, lower-order warm-up and final steps, Karras sigmas and final_sigmas_type.
public struct UniPCMultistepScheduler: Scheduler {
    /// Integer train timesteps.
    public let timesteps: [Double]
    /// One per timestep plus the final one (0 or sigma_min).
    public let sigmas: [Float]
    public let initNoiseSigma: Float = 1
    let predictionType: PredictionType
    let solverOrder: Int
    let lowerOrderFinal: Bool
    /// bh1: B(h) = h; bh2: B(h) = e^h - 1.
    let bh1: Bool
    /// Steps whose successor runs no corrector (diffusers' disable_corrector).
    let disableCorrector: Set<Int>
    /// x0 predictions of the last steps, newest last (at most solverOrder).
    private var modelOutputs: [Tensor] = []
    /// The previous step's (corrected) input sample, which the corrector starts from.
    private var lastSample: Tensor?
    /// The order the previous predictor ran with, which its corrector uses.
    private var lastOrder = 1

    public init(config: SchedulerConfig, steps: Int) throws(SchedulerError) {
        try config.validate()
        guard (1...3).contains(config.solverOrder) else { throw .unsupported(key: "solver_order", value: String(config.solverOrder)) }
        guard config.predictX0 else { throw .unsupported(key: "predict_x0", value: "false") }
        // diffusers maps the DPM-Solver names onto bh2.
        guard ["bh1", "bh2", "midpoint", "heun", "logrho"].contains(config.solverType) else {
            throw .unsupported(key: "solver_type", value: config.solverType)
        }
        let trainSteps = config.numTrainTimesteps
        guard steps >= 1, steps <= trainSteps else {
            throw .invalidSteps(steps, reason: "must lie in 1...\(trainSteps) (num_train_timesteps)")
        }
        let trainSigmas = config.trainSigmas
        var timesteps: [Double]
        var sigmas: [Double]
        let finalSigma: Double
        if config.useKarrasSigmas {
            sigmas = SchedulerConfig.karrasSigmas(minimum: config.sigmaMin ?? Double(trainSigmas[0]),
                                                  maximum: config.sigmaMax ?? Double(trainSigmas[trainSteps - 1]), count: steps)
            let logSigmas = trainSigmas.map { log($0) }
            timesteps = sigmas.map { SchedulerConfig.timestep(forSigma: $0, logSigmas: logSigmas).rounded(.toNearestOrEven) }
            finalSigma = config.finalSigmasType == .sigmaMin ? sigmas[steps - 1] : 0
        } else {
            // DPM-Solver's spacing (steps + 1 intervals), without its lambda clipping.
            var unclipped = config
            unclipped.lambdaMinClipped = -Double.infinity
            timesteps = DPMSolverMultistepScheduler.spacedTimesteps(config: unclipped, steps: steps)
            if let repeated = zip(timesteps, timesteps.dropFirst()).first(where: { $0.1 >= $0.0 }) {
                // h = 0 there, and the update divides by it.
                throw .invalidSteps(steps, reason: "timestep \(repeated.1) repeats with \(config.timestepSpacing ?? .linspace) spacing")
            }
            sigmas = timesteps.map { SchedulerConfig.interpolate($0, table: trainSigmas) }
            finalSigma = config.finalSigmasType == .sigmaMin ? Double(trainSigmas[0]) : 0
        }
        self.timesteps = timesteps
        self.sigmas = (sigmas + [finalSigma]).map { Float($0) }
        predictionType = config.predictionType
        solverOrder = config.solverOrder
        lowerOrderFinal = config.lowerOrderFinal
        bh1 = config.solverType == "bh1"
        disableCorrector = Set(config.disableCorrector)
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor { sample }

    public func addNoise(_ original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        let (alpha, sigma) = alphaSigma(sigmas[stepIndex])
        return LatentMath.map(original, noise) { x, z in alpha * x + sigma * z }
    }

    public mutating func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor,
                              random: inout any RandomSource) -> SchedulerStep {
        precondition(timesteps.indices.contains(stepIndex), "UniPC step \(stepIndex) outside 0..<\(timesteps.count)")
        let original = convertModelOutput(modelOutput, stepIndex: stepIndex, sample: sample)
        var current = sample
        if stepIndex > 0, !disableCorrector.contains(stepIndex - 1), let lastSample {
            current = corrected(original, lastSample: lastSample, stepIndex: stepIndex, order: lastOrder)
        }
        if modelOutputs.count == solverOrder { modelOutputs.removeFirst() }
        modelOutputs.append(original)
        let finalOrder = lowerOrderFinal ? min(solverOrder, timesteps.count - stepIndex) : solverOrder
        // Warm-up: no more history than the steps run so far.
        lastOrder = min(finalOrder, modelOutputs.count)
        lastSample = current
        return SchedulerStep(prevSample: predicted(current, stepIndex: stepIndex, order: lastOrder), predictedOriginal: original)
    }

    /// alpha_t = 1 / sqrt(sigma^2 + 1) and sigma_t = sigma * alpha_t, float32.
    private func alphaSigma(_ sigma: Float) -> (alpha: Float, sigma: Float) {
        let alpha = 1 / (sigma * sigma + 1).squareRoot()
        return (alpha, sigma * alpha)
    }

    private func lambda(_ index: Int) -> Float {
        let (alpha, sigma) = alphaSigma(sigmas[index])
        return log(alpha) - log(sigma)
    }

    private func convertModelOutput(_ modelOutput: Tensor, stepIndex: Int, sample: Tensor) -> Tensor {
        let (alpha, sigma) = alphaSigma(sigmas[stepIndex])
        switch predictionType {
        case .epsilon: return LatentMath.map(sample, modelOutput) { x, epsilon in (x - sigma * epsilon) / alpha }
        case .vPrediction: return LatentMath.map(sample, modelOutput) { x, v in alpha * x - sigma * v }
        case .sample:
            precondition(modelOutput.shape == sample.shape, "scheduler inputs of shapes \(modelOutput.shape) and \(sample.shape)")
            return modelOutput
        }
    }

    /// What the predictor and corrector share for a move from sigma index `from` to `to` using the
    /// history at sigma indices `history` (newest first, matching modelOutputs from its second-newest).
    private struct Update {
        let sampleScale: Float, originalScale: Float, residualScale: Float
        let ratios: [Float]
        /// b of the order conditions (one per order).
        let b: [Float]
        /// R: row j holds the ratios (and 1) to the power j.
        let rows: [[Float]]
    }

    private func update(from: Int, to: Int, history: [Int], order: Int) -> Update {
        let (alphaT, sigmaT) = alphaSigma(sigmas[to])
        let (_, sigmaS0) = alphaSigma(sigmas[from])
        let lambdaS0 = lambda(from)
        let h = lambda(to) - lambdaS0
        let ratios = history.map { (lambda($0) - lambdaS0) / h }
        let hh = -h
        let hPhi1 = expm1(hh)
        let bh = bh1 ? hh : expm1(hh)
        var hPhiK = hPhi1 / hh - 1
        var factorial = 1
        var b: [Float] = [], rows: [[Float]] = []
        let withOne = ratios + [1]
        for power in 1...order {
            rows.append(withOne.map { power == 1 ? 1 : pow($0, Float(power - 1)) })
            b.append(hPhiK * Float(factorial) / bh)
            factorial *= power + 1
            hPhiK = hPhiK / hh - Float(1 / Double(factorial))
        }
        return Update(sampleScale: sigmaT / sigmaS0, originalScale: alphaT * hPhi1, residualScale: alphaT * bh,
                      ratios: ratios, b: b, rows: rows)
    }

    /// D1 of each history entry: (m_k - m0) / r_k.
    private func differences(_ m0: Tensor, _ ratios: [Float]) -> [Tensor] {
        ratios.enumerated().map { k, ratio in
            LatentMath.map(modelOutputs[modelOutputs.count - 2 - k], m0) { mk, m in (mk - m) / ratio }
        }
    }

    /// sum_k rho_k * D1_k.
    private func weighted(_ terms: [Tensor], _ rhos: [Float]) -> Tensor? {
        guard var total = terms.first.map({ first in LatentMath.map(first) { rhos[0] * $0 } }) else { return nil }
        for (term, rho) in zip(terms.dropFirst(), rhos.dropFirst()) {
            total = LatentMath.map(total, term) { sum, d in sum + rho * d }
        }
        return total
    }

    /// UniP: the sample at the next sigma from `sample` and the x0 history.
    private func predicted(_ sample: Tensor, stepIndex: Int, order: Int) -> Tensor {
        let m0 = modelOutputs[modelOutputs.count - 1]
        let u = update(from: stepIndex, to: stepIndex + 1, history: (1..<order).map { stepIndex - $0 }, order: order)
        let rhos: [Float] = order == 2 ? [0.5] : Self.solve(Array(u.rows.prefix(order - 1).map { Array($0.prefix(order - 1)) }),
                                                            Array(u.b.prefix(order - 1)))
        let base = LatentMath.map(sample, m0) { x, m in u.sampleScale * x - u.originalScale * m }
        // First order has no residual term. (diffusers still multiplies B(h) by a residual of 0, which
        // is NaN for bh1 at a final sigma of 0, where this returns x0.)
        guard let residual = weighted(differences(m0, u.ratios), rhos) else { return base }
        return LatentMath.map(base, residual) { x, r in x - u.residualScale * r }
    }

    /// UniC: the current sample recomputed from the previous one with this step's x0 (`original`) added.
    private func corrected(_ original: Tensor, lastSample: Tensor, stepIndex: Int, order: Int) -> Tensor {
        let m0 = modelOutputs[modelOutputs.count - 1]
        let u = update(from: stepIndex - 1, to: stepIndex, history: (1..<order).map { stepIndex - 1 - $0 }, order: order)
        let rhos: [Float] = order == 1 ? [0.5] : Self.solve(u.rows, u.b)
        let base = LatentMath.map(lastSample, m0) { x, m in u.sampleScale * x - u.originalScale * m }
        let last = rhos[rhos.count - 1]
        let change = LatentMath.map(original, m0) { m, previous in last * (m - previous) }
        let total = weighted(differences(m0, u.ratios), rhos).map { LatentMath.map($0, change) { sum, c in sum + c } } ?? change
        return LatentMath.map(base, total) { x, r in x - u.residualScale * r }
    }

    /// A small linear system (at most 3x3) by Gaussian elimination with partial pivoting, as LAPACK's gesv.
    static func solve(_ matrix: [[Float]], _ rhs: [Float]) -> [Float] {
        var a = matrix, x = rhs
        let n = x.count
        for column in 0..<n {
            let pivot = (column..<n).max { abs(a[$0][column]) < abs(a[$1][column]) } ?? column
            a.swapAt(column, pivot)
            x.swapAt(column, pivot)
            for row in column + 1..<n {
                let factor = a[row][column] / a[column][column]
                for k in column..<n { a[row][k] -= factor * a[column][k] }
                x[row] -= factor * x[column]
            }
        }
        for row in (0..<n).reversed() {
            var value = x[row]
            for k in row + 1..<n { value -= a[row][k] * x[k] }
            x[row] = value / a[row][row]
        }
        return x
    }
}
