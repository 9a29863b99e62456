import Foundation
import Sfumato
import Testing

/// Hands out the noise diffusers drew (stored per step), checking the shape of every request.
struct ReplayedNoise: RandomSource {
    let draws: Tensor
    private(set) var used = 0

    init(draws: Tensor) { self.draws = draws }

    mutating func normal(shape: [Int]) -> Tensor {
        let stored = Array(draws.shape.dropFirst())
        guard used < draws.shape[0], shape == stored else {
            Issue.record("noise request \(used) for \(shape): \(draws.shape[0]) draws of \(stored) stored")
            return Tensor(zeros: shape)
        }
        defer { used += 1 }
        return draws.slice(used..<used + 1).reshaped(shape)
    }
}

/// Counts requests, for samplers that must not draw.
struct CountingRandom: RandomSource {
    var draws = 0
    mutating func normal(shape: [Int]) -> Tensor {
        draws += 1
        return Tensor(zeros: shape)
    }
}

/// Compares the schedulers with diffusers 0.42.1 (fixtures by Tests/Reference/fixtures_schedulers_b.py).
@Suite struct SchedulerBTests {
    static let tolerance: Float = 1e-5

    static func config(_ file: SafeTensorsFile, _ key: String) throws -> SchedulerConfig {
        let json = try #require(file.metadata["\(key).config"], "no config for \(key)")
        return try SchedulerConfig(json: Data(json.utf8))
    }

    static func steps<T: Decodable>(_ file: SafeTensorsFile, _ key: String, as type: T.Type) throws -> T {
        let json = try #require(file.metadata["\(key).steps"], "no steps for \(key)")
        return try JSONDecoder().decode(type, from: Data(json.utf8))
    }

    static func schedules(_ file: SafeTensorsFile) -> [String] {
        file.metadata.keys.filter { $0.hasSuffix(".config") && !$0.hasSuffix(".run.config") }
            .map { String($0.dropLast(".config".count)) }.sorted()
    }

    static func runs(_ file: SafeTensorsFile) -> [String] {
        file.metadata.keys.filter { $0.hasSuffix(".run.config") }.map { String($0.dropLast(".config".count)) }.sorted()
    }

    static func vector(_ values: [Double]) -> Tensor { Tensor(shape: [values.count], values: values.map { Float($0) }) }

    /// Timesteps, sigmas and init_noise_sigma of every stored schedule.
    static func checkSchedules<S: Scheduler>(_ fixture: String, make: (SchedulerConfig, Int) throws -> S,
                                             sigmas: KeyPath<S, [Float]>) throws {
        let file = try Fixtures.file(fixture)
        let names = schedules(file)
        #expect(!names.isEmpty, "\(fixture) holds no schedules")
        for name in names {
            let config = try config(file, name)
            for steps in try steps(file, name, as: [Int].self) {
                let key = "\(name).\(steps)"
                let scheduler = try make(config, steps)
                expectClose(vector(scheduler.timesteps), try file.tensor("\(key).timesteps"), tolerance: tolerance, "\(key) timesteps")
                let actual = scheduler[keyPath: sigmas]
                expectClose(Tensor(shape: [actual.count], values: actual), try file.tensor("\(key).sigmas"), tolerance: tolerance, "\(key) sigmas")
                expectClose(Tensor(shape: [1], values: [scheduler.initNoiseSigma]), try file.tensor("\(key).init_noise_sigma"),
                            tolerance: tolerance, "\(key) init_noise_sigma")
            }
        }
    }

    /// Replays every stored run step by step (each step gets diffusers' input sample; the
    /// scheduler keeps its own history) and compares scaled input, x0 and next sample.
    static func checkRuns<S: Scheduler>(_ fixture: String, make: (SchedulerConfig, Int) throws -> S, stochastic: Bool) throws {
        let file = try Fixtures.file(fixture)
        let names = runs(file)
        #expect(!names.isEmpty, "\(fixture) holds no runs")
        for name in names {
            var scheduler = try make(try config(file, name), try steps(file, name, as: Int.self))
            let samples = try file.tensor("\(name).sample"), outputs = try file.tensor("\(name).model_output")
            let scaled = try file.tensor("\(name).scaled"), prev = try file.tensor("\(name).prev"), x0 = try file.tensor("\(name).x0")
            try #require(scheduler.timesteps.count == samples.shape[0], "\(name): \(scheduler.timesteps.count) timesteps, \(samples.shape[0]) stored steps")
            var random: any RandomSource = stochastic ? ReplayedNoise(draws: try file.tensor("\(name).noise")) : CountingRandom()
            for index in 0..<samples.shape[0] {
                let sample = samples.slice(index..<index + 1).reshaped(Array(samples.shape.dropFirst()))
                let output = outputs.slice(index..<index + 1).reshaped(sample.shape)
                func stored(_ tensor: Tensor) -> Tensor { tensor.slice(index..<index + 1).reshaped(sample.shape) }
                expectClose(scheduler.scaleModelInput(sample, stepIndex: index), stored(scaled), tolerance: tolerance, "\(name) \(index) scaled")
                let result = scheduler.step(modelOutput: output, stepIndex: index, sample: sample, random: &random)
                expectClose(result.predictedOriginal, stored(x0), tolerance: tolerance, "\(name) \(index) x0")
                expectClose(result.prevSample, stored(prev), tolerance: tolerance, "\(name) \(index) prev_sample")
            }
            if let replayed = random as? ReplayedNoise {
                #expect(replayed.used == samples.shape[0], "\(name): \(replayed.used) noise draws for \(samples.shape[0]) steps")
            } else if let counting = random as? CountingRandom {
                #expect(counting.draws == 0, "\(name): a deterministic sampler drew noise")
            }
        }
    }

    @Test func eulerSchedules() throws {
        try Self.checkSchedules("schedulers/euler.safetensors", make: EulerDiscreteScheduler.init, sigmas: \.sigmas)
    }

    @Test func eulerRuns() throws {
        try Self.checkRuns("schedulers/euler.safetensors", make: EulerDiscreteScheduler.init, stochastic: false)
    }

    @Test func eulerAncestralSchedules() throws {
        try Self.checkSchedules("schedulers/euler_ancestral.safetensors", make: EulerAncestralDiscreteScheduler.init,
                                sigmas: \.sigmas)
    }

    @Test func eulerAncestralRunsDrawNoiseLikeDiffusers() throws {
        try Self.checkRuns("schedulers/euler_ancestral.safetensors", make: EulerAncestralDiscreteScheduler.init, stochastic: true)
    }

    @Test func dpmSolverSchedules() throws {
        try Self.checkSchedules("schedulers/dpm_solver_multistep.safetensors",
                                make: { try DPMSolverMultistepScheduler(config: $0, steps: $1) }, sigmas: \.sigmas)
    }

    @Test func dpmSolverRuns() throws {
        try Self.checkRuns("schedulers/dpm_solver_multistep.safetensors", make: { try DPMSolverMultistepScheduler(config: $0, steps: $1) }, stochastic: false)
    }

    /// The `karras` argument gives the schedule `use_karras_sigmas` gives.
    @Test func dpmSolverKarrasArgument() throws {
        let file = try Fixtures.file("schedulers/dpm_solver_multistep.safetensors")
        var config = try Self.config(file, "karras")
        #expect(config.useKarrasSigmas)
        config.useKarrasSigmas = false
        let scheduler = try DPMSolverMultistepScheduler(config: config, steps: 20, karras: true)
        expectClose(Self.vector(scheduler.timesteps), try file.tensor("karras.20.timesteps"), tolerance: 0, "timesteps")
        expectClose(Tensor(shape: [21], values: scheduler.sigmas), try file.tensor("karras.20.sigmas"), tolerance: Self.tolerance, "sigmas")
    }

    @Test func refusesWhatItDoesNotImplement() throws {
        var config = SchedulerConfig()
        config.algorithmType = "sde-dpmsolver++"
        #expect(throws: SchedulerError.unsupported(key: "algorithm_type", value: "sde-dpmsolver++")) {
            try DPMSolverMultistepScheduler(config: config, steps: 10)
        }
        config = SchedulerConfig()
        config.solverOrder = 3
        #expect(throws: SchedulerError.unsupported(key: "solver_order", value: "3")) {
            try DPMSolverMultistepScheduler(config: config, steps: 10)
        }
        config = SchedulerConfig()
        config.solverType = "heun"
        #expect(throws: SchedulerError.unsupported(key: "solver_type", value: "heun")) {
            try DPMSolverMultistepScheduler(config: config, steps: 10)
        }
        config = SchedulerConfig()
        config.predictionType = .sample
        #expect(throws: SchedulerError.unsupported(key: "prediction_type", value: "sample")) {
            try EulerAncestralDiscreteScheduler(config: config, steps: 10)
        }
        config = SchedulerConfig()
        config.interpolationType = "log_linear"
        #expect(throws: SchedulerError.unsupported(key: "interpolation_type", value: "log_linear")) {
            try EulerDiscreteScheduler(config: config, steps: 10)
        }
        // 1000 steps leave no room for DPM-Solver's extra interval: leading spacing gives 1000 times t = 1.
        config = SchedulerConfig()
        config.timestepSpacing = .leading
        config.stepsOffset = 1
        #expect(throws: SchedulerError.self) { try DPMSolverMultistepScheduler(config: config, steps: 1000) }
        #expect(throws: Never.self) { try DPMSolverMultistepScheduler(config: config, steps: 499) }
        for steps in [0, -3, 1001] {
            #expect(throws: SchedulerError.self) { try EulerDiscreteScheduler(config: SchedulerConfig(), steps: steps) }
            #expect(throws: SchedulerError.self) { try EulerAncestralDiscreteScheduler(config: SchedulerConfig(), steps: steps) }
            #expect(throws: SchedulerError.self) { try DPMSolverMultistepScheduler(config: SchedulerConfig(), steps: steps) }
        }
    }
}
