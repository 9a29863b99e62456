import Foundation
import Sfumato
import Testing

/// Heun, DPM++ SDE, LCM, TCD and UniPC against diffusers 0.42.1 (Tests/Reference/fixtures_schedulers_c.py).
@Suite struct SchedulerCTests {
    static let tolerance: Float = 1e-5
    typealias Make = (SchedulerConfig, Int, SafeTensorsFile, String) throws -> any Scheduler

    static func make<S: Scheduler>(_ initializer: @escaping (SchedulerConfig, Int) throws -> S) -> Make {
        { config, steps, _, _ in try initializer(config, steps) }
    }

    /// TCD's gamma comes from the run's metadata (diffusers' `eta` argument).
    static func tcd(_ config: SchedulerConfig, _ steps: Int, _ file: SafeTensorsFile, _ key: String) throws -> any Scheduler {
        let eta = try #require(file.metadata["\(key).eta"], "no eta for \(key)")
        return try TCDScheduler(config: config, steps: steps, gamma: try JSONDecoder().decode(Double.self, from: Data(eta.utf8)))
    }

    static func sigmas(_ scheduler: any Scheduler) -> [Float]? {
        switch scheduler {
        case let heun as HeunDiscreteScheduler: heun.sigmas
        case let sde as DPMSolverSDEScheduler: sde.sigmas
        case let unipc as UniPCMultistepScheduler: unipc.sigmas
        default: nil
        }
    }

    static func vector(_ values: [Double]) -> Tensor { Tensor(shape: [values.count], values: values.map { Float($0) }) }

    static func checkSchedules(_ fixture: String, make: Make) throws {
        let file = try Fixtures.file(fixture)
        let names = SchedulerBTests.schedules(file)
        #expect(!names.isEmpty, "\(fixture) holds no schedules")
        for name in names {
            let config = try SchedulerBTests.config(file, name)
            for steps in try SchedulerBTests.steps(file, name, as: [Int].self) {
                let key = "\(name).\(steps)"
                let scheduler = try make(config, steps, file, name)
                expectClose(vector(scheduler.timesteps), try file.tensor("\(key).timesteps"), tolerance: tolerance, "\(key) timesteps")
                if file.entries["\(key).sigmas"] != nil {
                    let actual = try #require(sigmas(scheduler), "\(key): no sigmas")
                    expectClose(Tensor(shape: [actual.count], values: actual), try file.tensor("\(key).sigmas"), tolerance: tolerance,
                                "\(key) sigmas")
                }
                expectClose(Tensor(shape: [1], values: [scheduler.initNoiseSigma]), try file.tensor("\(key).init_noise_sigma"),
                            tolerance: tolerance, "\(key) init_noise_sigma")
            }
        }
    }

    /// Every call of every stored run, fed diffusers' input sample, against diffusers' scaled input,
    /// x0 (where diffusers reports one) and next sample; the noise diffusers drew is handed out in order.
    static func checkRuns(_ fixture: String, make: Make) throws {
        let file = try Fixtures.file(fixture)
        let names = SchedulerBTests.runs(file)
        #expect(!names.isEmpty, "\(fixture) holds no runs")
        for name in names {
            var scheduler = try make(try SchedulerBTests.config(file, name), try SchedulerBTests.steps(file, name, as: Int.self), file, name)
            let samples = try file.tensor("\(name).sample"), outputs = try file.tensor("\(name).model_output")
            let scaled = try file.tensor("\(name).scaled"), prev = try file.tensor("\(name).prev")
            let x0 = file.entries["\(name).x0"] != nil ? try file.tensor("\(name).x0") : nil
            try #require(scheduler.timesteps.count == samples.shape[0], "\(name): \(scheduler.timesteps.count) timesteps, \(samples.shape[0]) calls stored")
            let noise = file.entries["\(name).noise"] != nil ? try file.tensor("\(name).noise") : nil
            var random: any RandomSource = noise.map { ReplayedNoise(draws: $0) } ?? CountingRandom()
            for index in 0..<samples.shape[0] {
                let shape = Array(samples.shape.dropFirst())
                func stored(_ tensor: Tensor) -> Tensor { tensor.slice(index..<index + 1).reshaped(shape) }
                let sample = stored(samples)
                expectClose(scheduler.scaleModelInput(sample, stepIndex: index), stored(scaled), tolerance: tolerance, "\(name) \(index) scaled")
                let result = scheduler.step(modelOutput: stored(outputs), stepIndex: index, sample: sample, random: &random)
                if let x0 { expectClose(result.predictedOriginal, stored(x0), tolerance: tolerance, "\(name) \(index) x0") }
                expectClose(result.prevSample, stored(prev), tolerance: tolerance, "\(name) \(index) prev_sample")
            }
            if let replayed = random as? ReplayedNoise {
                #expect(replayed.used == replayed.draws.shape[0], "\(name): \(replayed.used) draws, diffusers made \(replayed.draws.shape[0])")
            } else if let counting = random as? CountingRandom {
                #expect(counting.draws == 0, "\(name): drew noise where diffusers drew none")
            }
        }
    }

    /// diffusers' img2img start for a second-order sampler: `t_start * order` into the timesteps.
    static func checkImageToImage(_ fixture: String, make: Make) throws {
        let file = try Fixtures.file(fixture)
        let keys = file.metadata.keys.filter { $0.hasSuffix(".img2img") }.sorted()
        #expect(!keys.isEmpty, "\(fixture) holds no img2img case")
        struct Case: Decodable { let steps: Int, strength: Double, seed: UInt64 }
        for key in keys {
            let json = try #require(file.metadata[key])
            let entry = try JSONDecoder().decode(Case.self, from: Data(json.utf8))
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            let configData = try JSONSerialization.data(withJSONObject: try #require(object["config"]))
            var scheduler = try make(try SchedulerConfig.decode(json: configData), entry.steps, file, key)
            let begin = imageToImageBeginIndex(steps: entry.steps, strength: entry.strength) * scheduler.order
            let expected = try file.tensor("\(key).timesteps")
            expectClose(vector(Array(scheduler.timesteps[begin...])), expected, tolerance: tolerance, "\(key) timesteps")
            var sample = scheduler.addNoise(try file.tensor("\(key).original"), noise: try file.tensor("\(key).noise"), stepIndex: begin)
            expectClose(sample, try file.tensor("\(key).noisy"), tolerance: 1e-6, "\(key) add_noise")
            let outputs = try file.tensor("\(key).model_output"), scaled = try file.tensor("\(key).scaled")
            var random: any RandomSource = TorchRandom(seed: entry.seed)
            for offset in 0..<expected.count {
                func stored(_ tensor: Tensor) -> Tensor { tensor.slice(offset..<offset + 1).reshaped(sample.shape) }
                expectClose(scheduler.scaleModelInput(sample, stepIndex: begin + offset), stored(scaled), tolerance: tolerance,
                            "\(key) \(offset) scaled")
                sample = scheduler.step(modelOutput: stored(outputs), stepIndex: begin + offset, sample: sample, random: &random).prevSample
            }
            expectClose(sample, try file.tensor("\(key).final"), tolerance: tolerance, "\(key) final sample")
        }
    }

    @Test func heun() throws {
        let make = Self.make(HeunDiscreteScheduler.init)
        try Self.checkSchedules("schedulers_c/heun.safetensors", make: make)
        try Self.checkRuns("schedulers_c/heun.safetensors", make: make)
        try Self.checkImageToImage("schedulers_c/heun.safetensors", make: make)
    }

    /// The noise is replaced in the reference by the draws Sfumato makes (see DPMSolverSDEScheduler).
    @Test func dpmSolverSDE() throws {
        let make = Self.make(DPMSolverSDEScheduler.init)
        try Self.checkSchedules("schedulers_c/dpm_sde.safetensors", make: make)
        try Self.checkRuns("schedulers_c/dpm_sde.safetensors", make: make)
        try Self.checkImageToImage("schedulers_c/dpm_sde.safetensors", make: make)
    }

    @Test func lcm() throws {
        try Self.checkSchedules("schedulers_c/lcm.safetensors", make: Self.make(LCMScheduler.init))
        try Self.checkRuns("schedulers_c/lcm.safetensors", make: Self.make(LCMScheduler.init))
    }

    @Test func tcd() throws {
        try Self.checkSchedules("schedulers_c/tcd.safetensors", make: Self.make { try TCDScheduler(config: $0, steps: $1) })
        try Self.checkRuns("schedulers_c/tcd.safetensors", make: Self.tcd)
    }

    @Test func unipc() throws {
        try Self.checkSchedules("schedulers_c/unipc.safetensors", make: Self.make(UniPCMultistepScheduler.init))
        try Self.checkRuns("schedulers_c/unipc.safetensors", make: Self.make(UniPCMultistepScheduler.init))
    }

    /// Where diffusers' bh1 gives NaN (a final sigma of 0), the last step lands on the x0 prediction.
    @Test func uniPCBh1EndsOnItsEstimate() throws {
        var config = SchedulerConfig()
        config.solverType = "bh1"
        var scheduler = try UniPCMultistepScheduler(config: config, steps: 3)
        var random: any RandomSource = TorchRandom(seed: 1)
        var sample = random.normal(shape: [1, 4, 2, 2])
        for index in 0..<3 {
            let result = scheduler.step(modelOutput: random.normal(shape: sample.shape), stepIndex: index, sample: sample, random: &random)
            sample = result.prevSample
            if index == 2 { #expect(sample.toArray() == result.predictedOriginal.toArray()) }
        }
        #expect(sample.toArray().allSatisfy { $0.isFinite })
    }

    @Test func refusesWhatItCannotRun() throws {
        var lcm = SchedulerConfig()
        lcm.originalInferenceSteps = 50
        #expect(throws: SchedulerError.self) { try LCMScheduler(config: lcm, steps: 51) }
        #expect(throws: SchedulerError.self) { try TCDScheduler(config: lcm, steps: 0) }
        #expect(throws: SchedulerError.self) { try TCDScheduler(config: lcm, steps: 4, gamma: 1.5) }
        lcm.originalInferenceSteps = 2000
        #expect(throws: SchedulerError.self) { try LCMScheduler(config: lcm, steps: 4) }
        var unipc = SchedulerConfig()
        unipc.solverOrder = 4
        #expect(throws: SchedulerError.unsupported(key: "solver_order", value: "4")) { try UniPCMultistepScheduler(config: unipc, steps: 10) }
        unipc = SchedulerConfig()
        unipc.predictX0 = false
        #expect(throws: SchedulerError.unsupported(key: "predict_x0", value: "false")) { try UniPCMultistepScheduler(config: unipc, steps: 10) }
        var sde = SchedulerConfig()
        sde.predictionType = .sample
        #expect(throws: SchedulerError.unsupported(key: "prediction_type", value: "sample")) { try DPMSolverSDEScheduler(config: sde, steps: 10) }
        for steps in [0, 1001] {
            #expect(throws: SchedulerError.self) { try HeunDiscreteScheduler(config: SchedulerConfig(), steps: steps) }
            #expect(throws: SchedulerError.self) { try DPMSolverSDEScheduler(config: SchedulerConfig(), steps: steps) }
            #expect(throws: SchedulerError.self) { try UniPCMultistepScheduler(config: SchedulerConfig(), steps: steps) }
        }
        // The keys these samplers add are read from a scheduler_config.json.
        let config = try SchedulerConfig.decode(json: Data(#"{"original_inference_steps": 40, "timestep_scaling": 5, "predict_x0": true, "disable_corrector": [1]}"#.utf8))
        #expect(config.originalInferenceSteps == 40 && config.timestepScaling == 5 && config.predictX0 && config.disableCorrector == [1])
    }
}
