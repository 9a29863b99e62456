/// Linear multistep sampling (order 4) as diffusers' `LMSDiscreteScheduler`, on the
/// Karras-style sigma schedule sqrt((1 - alphas_cumprod) / alphas_cumprod).
public struct LMSDiscreteScheduler: Scheduler {
    public static let order = 4

    /// Fractional for linspace spacing (float32 values, as diffusers passes them to the UNet).
    public let timesteps: [Double]
    public let initNoiseSigma: Float
    /// One per timestep plus the final 0.
    public let sigmas: [Float]
    private let predictionType: PredictionType
    /// The last (up to) `order` ODE derivatives, newest last.
    private var derivatives: [Tensor] = []

    public init(config: SchedulerConfig, steps: Int) throws(SchedulerError) {
        try config.validate()
        if config.useKarrasSigmas { throw .unsupported(key: "use_karras_sigmas", value: "true") }
        let spacing = config.timestepSpacing ?? .linspace
        timesteps = try config.spacedTimesteps(steps: steps, spacing: spacing, roundLinspace: false)
        let trainSigmas = config.alphasCumprod.map { alpha in ((1 - alpha) / alpha).squareRoot() }
        sigmas = timesteps.map { Float(Self.interpolate(trainSigmas, at: $0)) } + [0]
        let largest = sigmas.max() ?? 0
        // diffusers: sigma_max for linspace/trailing, sqrt(sigma_max^2 + 1) for leading.
        initNoiseSigma = spacing == .leading ? (largest * largest + 1).squareRoot() : largest
        predictionType = config.predictionType
    }

    /// np.interp on the grid 0, 1, 2, ... (in double, with the float32 table values).
    static func interpolate(_ table: [Float], at x: Double) -> Double {
        guard x > 0 else { return Double(table[0]) }
        guard x < Double(table.count - 1) else { return Double(table[table.count - 1]) }
        let lower = Int(x)
        let low = Double(table[lower])
        if x == Double(lower) { return low }
        let slope = Double(table[lower + 1]) - low
        return slope * (x - Double(lower)) + low
    }

    public func addNoise(_ original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        sigmaAddNoise(original, noise: noise, sigma: sigmas[stepIndex])
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor {
        let sigma = sigmas[stepIndex]
        let scale = (sigma * sigma + 1).squareRoot()
        return LatentMath.map(sample) { $0 / scale }
    }

    public mutating func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor, random: inout any RandomSource) -> SchedulerStep {
        precondition(timesteps.indices.contains(stepIndex), "LMS step \(stepIndex) outside 0..<\(timesteps.count)")
        precondition(modelOutput.shape == sample.shape && derivatives.allSatisfy { $0.shape == sample.shape },
                     "LMS inputs change shape within a run")
        let sigma = sigmas[stepIndex]
        let original: Tensor
        switch predictionType {
        case .epsilon:
            original = LatentMath.map(sample, modelOutput) { x, e in x - sigma * e }
        case .vPrediction:
            let denominator = sigma * sigma + 1
            let outputScale = -sigma / denominator.squareRoot()
            original = LatentMath.map(sample, modelOutput) { x, v in v * outputScale + x / denominator }
        case .sample:
            original = modelOutput
        }
        if derivatives.count == Self.order { derivatives.removeFirst() }
        derivatives.append(LatentMath.map(sample, original) { x, x0 in (x - x0) / sigma })

        let order = min(stepIndex + 1, Self.order)
        let coefficients = (0..<order).map { Float(coefficient(order: order, step: stepIndex, term: $0)) }
        // sample + sum(coefficient_j * derivative_j), newest derivative first, summed left to right.
        let out = Tensor(uninitializedShape: sample.shape)
        let x = sample.pointer, y = out.pointer
        let newestFirst = derivatives.reversed().prefix(order).map(\.pointer)
        for index in 0..<out.count {
            var total: Float = 0
            for (term, d) in newestFirst.enumerated() { total += coefficients[term] * d[index] }
            y[index] = x[index] + total
        }
        return SchedulerStep(prevSample: out, predictedOriginal: original)
    }

    /// Integral over [sigma_step, sigma_step+1] of the Lagrange basis polynomial of `term`
    /// through the last `order` sigmas. diffusers integrates it numerically (scipy quad); the
    /// integrand has degree < 4, so 3-point Gauss-Legendre (exact to degree 5) gives it exactly.
    func coefficient(order: Int, step: Int, term: Int) -> Double {
        func basis(_ tau: Double) -> Double {
            var product = 1.0
            for k in 0..<order where k != term {
                let node = Double(sigmas[step - k])
                product *= (tau - node) / (Double(sigmas[step - term]) - node)
            }
            return product
        }
        let a = Double(sigmas[step]), b = Double(sigmas[step + 1])
        let half = (b - a) / 2, middle = (a + b) / 2
        let offset = (3.0 / 5.0).squareRoot()
        return half * (5 * basis(middle - half * offset) + 8 * basis(middle) + 5 * basis(middle + half * offset)) / 9
    }
}
