import Foundation

/// Why a scheduler config or run cannot be used.
public enum SchedulerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A config key holds a value diffusers knows but Sfumato does not implement (or no one knows).
    case unsupported(key: String, value: String)
    /// A config key holds a value of the wrong kind or out of range.
    case invalid(key: String, reason: String)
    /// The requested number of inference steps cannot be served by this config.
    case invalidSteps(Int, reason: String)
    /// The scheduler config file could not be read or parsed.
    case unreadable(path: String, reason: String)
    /// `_class_name` names a scheduler Sfumato has no counterpart for.
    case unknownClass(String)

    public var description: String {
        switch self {
        case let .unsupported(key, value): "scheduler config: \(key) = \(value) is not supported"
        case let .invalid(key, reason): "scheduler config: \(key) is invalid: \(reason)"
        case let .invalidSteps(steps, reason): "scheduler: \(steps) inference steps: \(reason)"
        case let .unreadable(path, reason): "scheduler config \(path): \(reason)"
        case let .unknownClass(name): "scheduler config: _class_name \(name) has no Sfumato scheduler"
        }
    }
}

public enum BetaSchedule: String, Codable, Sendable {
    case linear
    case scaledLinear = "scaled_linear"
    case squaredCosCapV2 = "squaredcos_cap_v2"
}

public enum PredictionType: String, Codable, Sendable {
    case epsilon
    case vPrediction = "v_prediction"
    case sample
}

public enum TimestepSpacing: String, Codable, Sendable {
    case leading, trailing, linspace
}

public enum FinalSigmasType: String, Codable, Sendable {
    case zero
    case sigmaMin = "sigma_min"
}

/// `scheduler/scheduler_config.json` of a diffusers model folder.
///
/// Keys whose diffusers default differs between scheduler classes are optional here
/// (`nil` = absent from the file); each scheduler applies its own class default, as
/// diffusers' `from_config` does. Unknown keys are ignored. Features Sfumato does not
/// implement (thresholding, zero-SNR rescaling, exponential/beta/flow sigmas, ...) are
/// refused while decoding with `SchedulerError.unsupported` naming the key.
public struct SchedulerConfig: Codable, Sendable, Equatable {
    /// `_class_name`, e.g. "PNDMScheduler"; decides the default sampler.
    public var className: String?
    public var numTrainTimesteps: Int = 1000
    public var betaStart: Double = 0.0001
    public var betaEnd: Double = 0.02
    public var betaSchedule: BetaSchedule = .linear
    public var trainedBetas: [Double]?
    public var predictionType: PredictionType = .epsilon
    /// Class default: leading for DDIM, PNDM, DDPM; linspace for Euler, LMS, DPM-Solver.
    public var timestepSpacing: TimestepSpacing?
    public var stepsOffset: Int = 0
    /// Class default: true for DDIM, false for PNDM.
    public var setAlphaToOne: Bool?
    public var skipPrkSteps: Bool = false
    /// Class default: true for DDIM and DDPM.
    public var clipSample: Bool?
    public var clipSampleRange: Double = 1.0
    /// DDPM's default is "fixed_small"; DPM-Solver's is none.
    public var varianceType: String?
    public var useKarrasSigmas: Bool = false
    public var sigmaMin: Double?
    public var sigmaMax: Double?
    public var finalSigmasType: FinalSigmasType = .zero
    /// Euler: "linear" (only value supported).
    public var interpolationType: String = "linear"
    /// Euler: "discrete" (only value supported).
    public var timestepType: String = "discrete"
    // DPM-Solver multistep keys; which values it supports is that scheduler's decision.
    public var solverOrder: Int = 2
    public var algorithmType: String = "dpmsolver++"
    public var solverType: String = "midpoint"
    public var lowerOrderFinal: Bool = true
    public var eulerAtFinal: Bool = false
    public var lambdaMinClipped: Double = -Double.infinity
    // LCM and TCD: the distillation schedule and the boundary-condition scaling.
    public var originalInferenceSteps: Int = 50
    public var timestepScaling: Double = 10
    // UniPC: the data-prediction form (the only one supported) and the steps without corrector.
    public var predictX0: Bool = true
    public var disableCorrector: [Int] = []

    /// diffusers' constructor defaults with nothing overridden.
    public init() {}

    /// Reads and validates a `scheduler_config.json`.
    public init(path: String) throws(SchedulerError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadable(path: path, reason: "cannot read the file")
        }
        do {
            self = try Self.decode(json: data)
        } catch .unreadable(_, let reason) {
            throw .unreadable(path: path, reason: reason)
        }
    }

    /// Parses and validates config JSON.
    public static func decode(json data: Data) throws(SchedulerError) -> SchedulerConfig {
        do {
            return try JSONDecoder().decode(SchedulerConfig.self, from: data)
        } catch let error as SchedulerError {
            throw error
        } catch let DecodingError.typeMismatch(type, context), let DecodingError.valueNotFound(type, context) {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw .invalid(key: key, reason: "expected \(type)")
        } catch {
            throw .unreadable(path: "<json>", reason: "not a JSON object: \(error)")
        }
    }

    private enum CodingKeys: String, CodingKey {
        case className = "_class_name"
        case numTrainTimesteps = "num_train_timesteps"
        case betaStart = "beta_start"
        case betaEnd = "beta_end"
        case betaSchedule = "beta_schedule"
        case trainedBetas = "trained_betas"
        case predictionType = "prediction_type"
        case timestepSpacing = "timestep_spacing"
        case stepsOffset = "steps_offset"
        case setAlphaToOne = "set_alpha_to_one"
        case skipPrkSteps = "skip_prk_steps"
        case clipSample = "clip_sample"
        case clipSampleRange = "clip_sample_range"
        case varianceType = "variance_type"
        case useKarrasSigmas = "use_karras_sigmas"
        case sigmaMin = "sigma_min"
        case sigmaMax = "sigma_max"
        case finalSigmasType = "final_sigmas_type"
        case interpolationType = "interpolation_type"
        case timestepType = "timestep_type"
        case solverOrder = "solver_order"
        case algorithmType = "algorithm_type"
        case solverType = "solver_type"
        case lowerOrderFinal = "lower_order_final"
        case eulerAtFinal = "euler_at_final"
        case lambdaMinClipped = "lambda_min_clipped"
        case originalInferenceSteps = "original_inference_steps"
        case timestepScaling = "timestep_scaling"
        case predictX0 = "predict_x0"
        case disableCorrector = "disable_corrector"
        // Read only to refuse them when switched on.
        case thresholding
        case rescaleBetasZeroSnr = "rescale_betas_zero_snr"
        case useExponentialSigmas = "use_exponential_sigmas"
        case useBetaSigmas = "use_beta_sigmas"
        case useLuLambdas = "use_lu_lambdas"
        case useFlowSigmas = "use_flow_sigmas"
        case useDynamicShifting = "use_dynamic_shifting"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // JSON null means "the class default" in diffusers configs, so null and absent are alike.
        func value<T: Decodable>(_ key: CodingKeys, _ type: T.Type) throws -> T? {
            try c.decodeIfPresent(type, forKey: key)
        }
        func string<E: RawRepresentable>(_ key: CodingKeys, _ type: E.Type) throws -> E? where E.RawValue == String {
            guard let raw = try c.decodeIfPresent(String.self, forKey: key) else { return nil }
            guard let parsed = E(rawValue: raw) else { throw SchedulerError.unsupported(key: key.rawValue, value: raw) }
            return parsed
        }
        className = try value(.className, String.self)
        numTrainTimesteps = try value(.numTrainTimesteps, Int.self) ?? numTrainTimesteps
        betaStart = try value(.betaStart, Double.self) ?? betaStart
        betaEnd = try value(.betaEnd, Double.self) ?? betaEnd
        betaSchedule = try string(.betaSchedule, BetaSchedule.self) ?? betaSchedule
        trainedBetas = try value(.trainedBetas, [Double].self)
        predictionType = try string(.predictionType, PredictionType.self) ?? predictionType
        timestepSpacing = try string(.timestepSpacing, TimestepSpacing.self)
        stepsOffset = try value(.stepsOffset, Int.self) ?? stepsOffset
        setAlphaToOne = try value(.setAlphaToOne, Bool.self)
        skipPrkSteps = try value(.skipPrkSteps, Bool.self) ?? skipPrkSteps
        clipSample = try value(.clipSample, Bool.self)
        clipSampleRange = try value(.clipSampleRange, Double.self) ?? clipSampleRange
        varianceType = try value(.varianceType, String.self)
        useKarrasSigmas = try value(.useKarrasSigmas, Bool.self) ?? useKarrasSigmas
        sigmaMin = try value(.sigmaMin, Double.self)
        sigmaMax = try value(.sigmaMax, Double.self)
        finalSigmasType = try string(.finalSigmasType, FinalSigmasType.self) ?? finalSigmasType
        interpolationType = try value(.interpolationType, String.self) ?? interpolationType
        timestepType = try value(.timestepType, String.self) ?? timestepType
        solverOrder = try value(.solverOrder, Int.self) ?? solverOrder
        algorithmType = try value(.algorithmType, String.self) ?? algorithmType
        solverType = try value(.solverType, String.self) ?? solverType
        lowerOrderFinal = try value(.lowerOrderFinal, Bool.self) ?? lowerOrderFinal
        eulerAtFinal = try value(.eulerAtFinal, Bool.self) ?? eulerAtFinal
        lambdaMinClipped = try value(.lambdaMinClipped, Double.self) ?? lambdaMinClipped
        originalInferenceSteps = try value(.originalInferenceSteps, Int.self) ?? originalInferenceSteps
        timestepScaling = try value(.timestepScaling, Double.self) ?? timestepScaling
        predictX0 = try value(.predictX0, Bool.self) ?? predictX0
        disableCorrector = try value(.disableCorrector, [Int].self) ?? disableCorrector

        for key in [CodingKeys.thresholding, .rescaleBetasZeroSnr, .useExponentialSigmas, .useBetaSigmas,
                    .useLuLambdas, .useFlowSigmas, .useDynamicShifting]
        where try value(key, Bool.self) == true {
            throw SchedulerError.unsupported(key: key.rawValue, value: "true")
        }
        if interpolationType != "linear" {
            throw SchedulerError.unsupported(key: CodingKeys.interpolationType.rawValue, value: interpolationType)
        }
        if timestepType != "discrete" {
            throw SchedulerError.unsupported(key: CodingKeys.timestepType.rawValue, value: timestepType)
        }
        try validate()
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(className, forKey: .className)
        try c.encode(numTrainTimesteps, forKey: .numTrainTimesteps)
        try c.encode(betaStart, forKey: .betaStart)
        try c.encode(betaEnd, forKey: .betaEnd)
        try c.encode(betaSchedule, forKey: .betaSchedule)
        try c.encodeIfPresent(trainedBetas, forKey: .trainedBetas)
        try c.encode(predictionType, forKey: .predictionType)
        try c.encodeIfPresent(timestepSpacing, forKey: .timestepSpacing)
        try c.encode(stepsOffset, forKey: .stepsOffset)
        try c.encodeIfPresent(setAlphaToOne, forKey: .setAlphaToOne)
        try c.encode(skipPrkSteps, forKey: .skipPrkSteps)
        try c.encodeIfPresent(clipSample, forKey: .clipSample)
        try c.encode(clipSampleRange, forKey: .clipSampleRange)
        try c.encodeIfPresent(varianceType, forKey: .varianceType)
        try c.encode(useKarrasSigmas, forKey: .useKarrasSigmas)
        try c.encodeIfPresent(sigmaMin, forKey: .sigmaMin)
        try c.encodeIfPresent(sigmaMax, forKey: .sigmaMax)
        try c.encode(finalSigmasType, forKey: .finalSigmasType)
        try c.encode(interpolationType, forKey: .interpolationType)
        try c.encode(timestepType, forKey: .timestepType)
        try c.encode(solverOrder, forKey: .solverOrder)
        try c.encode(algorithmType, forKey: .algorithmType)
        try c.encode(solverType, forKey: .solverType)
        try c.encode(lowerOrderFinal, forKey: .lowerOrderFinal)
        try c.encode(eulerAtFinal, forKey: .eulerAtFinal)
        if lambdaMinClipped.isFinite { try c.encode(lambdaMinClipped, forKey: .lambdaMinClipped) }
        try c.encode(originalInferenceSteps, forKey: .originalInferenceSteps)
        try c.encode(timestepScaling, forKey: .timestepScaling)
        try c.encode(predictX0, forKey: .predictX0)
        try c.encode(disableCorrector, forKey: .disableCorrector)
    }

    /// Range checks shared by every scheduler (also run after decoding).
    public func validate() throws(SchedulerError) {
        guard numTrainTimesteps >= 2, numTrainTimesteps <= 100_000 else {
            throw .invalid(key: "num_train_timesteps", reason: "\(numTrainTimesteps) is outside 2...100000")
        }
        guard betaStart.isFinite, betaStart >= 0, betaStart < 1 else {
            throw .invalid(key: "beta_start", reason: "\(betaStart) is outside [0, 1)")
        }
        guard betaEnd.isFinite, betaEnd >= 0, betaEnd < 1 else {
            throw .invalid(key: "beta_end", reason: "\(betaEnd) is outside [0, 1)")
        }
        if let trainedBetas {
            guard trainedBetas.count == numTrainTimesteps else {
                throw .invalid(key: "trained_betas", reason: "\(trainedBetas.count) values for \(numTrainTimesteps) train timesteps")
            }
            guard trainedBetas.allSatisfy({ $0.isFinite && $0 >= 0 && $0 < 1 }) else {
                throw .invalid(key: "trained_betas", reason: "values must lie in [0, 1)")
            }
        }
        guard stepsOffset >= 0, stepsOffset < numTrainTimesteps else {
            throw .invalid(key: "steps_offset", reason: "\(stepsOffset) is outside 0..<\(numTrainTimesteps)")
        }
        guard clipSampleRange.isFinite, clipSampleRange > 0 else {
            throw .invalid(key: "clip_sample_range", reason: "\(clipSampleRange) must be positive")
        }
    }
}

// MARK: - Noise schedule shared by all schedulers

extension SchedulerConfig {
    /// The training betas, rounded exactly as diffusers' float32 torch tensors are.
    public var betas: [Float] {
        if let trainedBetas { return trainedBetas.map { Float($0) } }
        let count = numTrainTimesteps
        switch betaSchedule {
        case .linear:
            return Self.torchLinspace(Float(betaStart), Float(betaEnd), count: count)
        case .scaledLinear:
            // torch.linspace(start**0.5, end**0.5, n, dtype=float32) ** 2
            return Self.torchLinspace(Float(betaStart.squareRoot()), Float(betaEnd.squareRoot()), count: count).map { $0 * $0 }
        case .squaredCosCapV2:
            // Glide cosine schedule, computed in Python doubles and stored as float32.
            func alphaBar(_ t: Double) -> Double {
                let c = cos((t + 0.008) / 1.008 * Double.pi / 2)
                return c * c
            }
            return (0..<count).map { index in
                let t1 = Double(index) / Double(count), t2 = Double(index + 1) / Double(count)
                return Float(min(1 - alphaBar(t2) / alphaBar(t1), 0.999))
            }
        }
    }

    /// cumprod(1 - betas): float32 alphas, product accumulated in double and rounded per
    /// element, as torch.cumprod does on the CPU.
    public var alphasCumprod: [Float] {
        var product = 1.0
        return betas.map { beta in
            product *= Double(1 - beta)
            return Float(product)
        }
    }

    /// torch.linspace in float32 on the CPU: start + step * i (fused) for the first half,
    /// end - step * (n - 1 - i) for the second, step = (end - start) / (n - 1) in float32.
    static func torchLinspace(_ start: Float, _ end: Float, count: Int) -> [Float] {
        guard count > 1 else { return count == 1 ? [start] : [] }
        let step = (end - start) / Float(count - 1)
        let halfway = count / 2
        return (0..<count).map { index in
            index < halfway
                ? start.addingProduct(step, Float(index))
                : end.addingProduct(-step, Float(count - 1 - index))
        }
    }

    /// diffusers' `set_timesteps` spacing (DDIM, DDPM, Euler, LMS), descending.
    ///
    /// `roundLinspace`: DDIM and DDPM round linspace timesteps to integers; Euler and LMS
    /// keep them fractional (as float32). Timesteps may fall outside 0..<T (see
    /// `requireTrainTimesteps` for the samplers that cannot take that).
    public func spacedTimesteps(steps: Int, spacing: TimestepSpacing, roundLinspace: Bool) throws(SchedulerError) -> [Double] {
        let trainSteps = numTrainTimesteps
        guard steps >= 1, steps <= trainSteps else {
            throw .invalidSteps(steps, reason: "must lie in 1...\(trainSteps) (num_train_timesteps)")
        }
        let timesteps: [Double]
        switch spacing {
        case .linspace:
            let values = Self.numpyLinspace(0, Double(trainSteps - 1), count: steps)
            timesteps = values.reversed().map { roundLinspace ? $0.rounded(.toNearestOrEven) : Double(Float($0)) }
        case .leading:
            let ratio = trainSteps / steps
            timesteps = (0..<steps).reversed().map { Double($0 * ratio + stepsOffset) }
        case .trailing:
            timesteps = Self.numpyTrailing(trainSteps: trainSteps, steps: steps).map { $0 - 1 }
        }
        return timesteps
    }

    /// For samplers that index alphas_cumprod by timestep: steps_offset can push leading
    /// timesteps past the schedule, and numpy's arange gives trailing spacing a timestep -1
    /// for some step counts (61, 103, ...); diffusers would fail or wrap around there.
    func requireTrainTimesteps(_ timesteps: [Double], steps: Int) throws(SchedulerError) {
        let last = Double(numTrainTimesteps - 1)
        if let bad = timesteps.first(where: { !($0 >= 0 && $0 <= last) }) {
            throw .invalidSteps(steps, reason: "timestep \(bad) lies outside 0...\(numTrainTimesteps - 1) (steps_offset \(stepsOffset))")
        }
    }

    /// np.linspace(start, stop, n): start + i * step in double, last element exactly stop.
    static func numpyLinspace(_ start: Double, _ stop: Double, count: Int) -> [Double] {
        guard count > 1 else { return count == 1 ? [start] : [] }
        let step = (stop - start) / Double(count - 1)
        var values = (0..<count).map { Double($0) * step + start }
        values[count - 1] = stop
        return values
    }

    /// np.round(np.arange(start, 0, -T / n)), start = T unless DPM-Solver clips it. numpy's arange
    /// has ceil((0 - start) / -ratio) elements (which rounding could push past n) and fills
    /// start + i * delta with delta = (start - ratio) - start; both are reproduced as diffusers gets them.
    static func numpyTrailing(trainSteps: Int, steps: Int, start: Int? = nil) -> [Double] {
        let ratio = Double(trainSteps) / Double(steps)
        let start = Double(start ?? trainSteps)
        let length = Int((-start / -ratio).rounded(.up))
        let delta = (start - ratio) - start
        return (0..<length).map { (start + Double($0) * delta).rounded(.toNearestOrEven) }
    }
}

// MARK: - Karras-style sigma schedules (Euler, Euler ancestral, DPM-Solver, LMS)

extension SchedulerConfig {
    /// Training sigmas sqrt((1 - alphas_cumprod) / alphas_cumprod) in float32, index = train timestep.
    public var trainSigmas: [Float] {
        alphasCumprod.map { ((1 - $0) / $0).squareRoot() }
    }

    /// np.interp(x, arange(table.count), table) in double: clamped at both ends, exact at grid points.
    static func interpolate(_ x: Double, table: [Float]) -> Double {
        let last = table.count - 1
        guard x.isFinite else { return x.isNaN ? x : Double(x > 0 ? table[last] : table[0]) }
        if x <= 0 { return Double(table[0]) }
        if x >= Double(last) { return Double(table[last]) }
        let low = Int(x.rounded(.down))
        let lowValue = Double(table[low])
        if Double(low) == x { return lowValue }
        let slope = Double(table[low + 1]) - lowValue
        return slope * (x - Double(low)) + lowValue
    }

    /// Karras et al. (2022) sigmas with rho = 7, from `maximum` down to `minimum`, in double.
    static func karrasSigmas(minimum: Double, maximum: Double, count: Int) -> [Double] {
        let rho = 7.0
        let minInverse = pow(minimum, 1 / rho)
        let maxInverse = pow(maximum, 1 / rho)
        return numpyLinspace(0, 1, count: count).map { ramp in
            pow(maxInverse + ramp * (minInverse - maxInverse), rho)
        }
    }

    /// diffusers' `_sigma_to_t`: the fractional train timestep whose log sigma matches, by linear
    /// interpolation in `logSigmas` (float32 logs of `trainSigmas`, ascending).
    static func timestep(forSigma sigma: Double, logSigmas: [Float]) -> Double {
        let logSigma = log(max(sigma, 1e-10))
        // Last index whose log sigma is <= logSigma (0 when none), kept below the final pair.
        var low = 0
        for (index, value) in logSigmas.enumerated() where logSigma - Double(value) >= 0 { low = index }
        low = min(low, logSigmas.count - 2)
        let lowValue = logSigmas[low], highValue = logSigmas[low + 1]
        // The denominator is a float32 difference in numpy, the numerator a double one.
        let weight = min(max((Double(lowValue) - logSigma) / Double(lowValue - highValue), 0), 1)
        return (1 - weight) * Double(low) + weight * Double(low + 1)
    }
}
