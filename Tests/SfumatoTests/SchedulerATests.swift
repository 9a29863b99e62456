import Foundation
import Sfumato
import Testing

/// Hands out the noise the reference run drew from its torch.Generator, in the same order,
/// so stochastic steps can be compared without depending on TorchRandom.
private struct ReplayRandom: RandomSource {
    let noises: [Tensor]
    var drawn = 0

    mutating func normal(shape: [Int]) -> Tensor {
        defer { drawn += 1 }
        guard drawn < noises.count, noises[drawn].shape == shape else {
            Issue.record("draw \(drawn) of shape \(shape): the reference drew \(noises.count) tensors")
            return Tensor(zeros: shape)
        }
        return noises[drawn]
    }
}

/// DDIM, PNDM (PLMS), DDPM and LMS against diffusers 0.42.1 (Tests/Reference/fixtures_schedulers_a.py).
@Suite struct SchedulerATests {
    static let kinds = ["ddim", "pndm", "ddpm", "lms"]

    static func reference(_ file: SafeTensorsFile) throws -> [String: Any] {
        let text = try #require(file.metadata["reference"], "fixture metadata 'reference'")
        return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    static func config(_ json: Any) throws -> SchedulerConfig {
        try SchedulerConfig.decode(json: JSONSerialization.data(withJSONObject: json))
    }

    static func make(_ kind: String, _ config: SchedulerConfig, steps: Int, eta: Float = 0) throws -> any Scheduler {
        switch kind {
        case "ddim": try DDIMScheduler(config: config, steps: steps, eta: eta)
        case "pndm": try PNDMScheduler(config: config, steps: steps)
        case "ddpm": try DDPMScheduler(config: config, steps: steps)
        case "lms": try LMSDiscreteScheduler(config: config, steps: steps)
        default: throw SchedulerError.unknownClass(kind)
        }
    }

    static func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

    @Test func readsTheStableDiffusion15Config() throws {
        let config = try SchedulerConfig(path: Fixtures.path("schedulers_a/sd15_scheduler_config.json"))
        #expect(config.className == "PNDMScheduler")
        #expect(config.betaStart == 0.00085 && config.betaEnd == 0.012 && config.betaSchedule == .scaledLinear)
        #expect(config.numTrainTimesteps == 1000 && config.stepsOffset == 1 && config.skipPrkSteps)
        #expect(config.setAlphaToOne == false && config.clipSample == false && config.trainedBetas == nil)
        #expect(config.timestepSpacing == nil && config.predictionType == .epsilon)
    }

    /// Betas and alphas_cumprod equal torch's float32 tensors bit for bit.
    @Test func noiseScheduleMatchesTorchExactly() throws {
        let file = try Fixtures.file("schedulers_a/schedules.safetensors")
        let schedules = try #require(try Self.reference(file)["schedules"] as? [String: Any])
        #expect(schedules.count == 3)
        for (name, json) in schedules {
            let config = try Self.config(json)
            #expect(Self.bits(config.betas) == Self.bits(try file.tensor("betas/\(name)").toArray()), "betas \(name)")
            #expect(Self.bits(config.alphasCumprod) == Self.bits(try file.tensor("alphas_cumprod/\(name)").toArray()),
                    "alphas_cumprod \(name)")
        }
    }

    @Test func timestepsAndSigmasMatchDiffusers() throws {
        let file = try Fixtures.file("schedulers_a/schedules.safetensors")
        let variants = try #require(try Self.reference(file)["variants"] as? [String: Any])
        var checked = 0
        for kind in Self.kinds {
            for (variant, json) in variants {
                for steps in [1, 2, 3, 5, 20, 50] {
                    let key = "\(kind)/\(variant)/\(steps)"
                    guard file.entries["\(key)/timesteps"] != nil else { continue }
                    let scheduler = try Self.make(kind, try Self.config(json), steps: steps)
                    let expected = try file.tensor("\(key)/timesteps").toArray()
                    #expect(Self.bits(scheduler.timesteps.map { Float($0) }) == Self.bits(expected), "\(key) timesteps")
                    let sigma = try file.tensor("\(key)/init_noise_sigma")[flat: 0]
                    #expect(abs(scheduler.initNoiseSigma - sigma) <= 1e-6 * sigma, "\(key) init_noise_sigma")
                    if let lms = scheduler as? LMSDiscreteScheduler {
                        let reference = try file.tensor("\(key)/sigmas")
                        expectClose(Tensor(shape: [lms.sigmas.count], values: lms.sigmas), reference, tolerance: 1e-6, "\(key) sigmas")
                    }
                    checked += 1
                }
            }
        }
        // PNDM: no "sample" variant, no Runge-Kutta ("linear") run below 4 steps.
        #expect(checked == 4 * 6 * 6 - 6 - 3)
    }

    /// Eight successive steps per case; each step gets the reference's previous output, so a
    /// failure points at the step that diverges. Stochastic steps replay the reference noise.
    @Test func stepsMatchDiffusers() throws {
        let file = try Fixtures.file("schedulers_a/runs.safetensors")
        let reference = try Self.reference(file)
        let variants = try #require(reference["variants"] as? [String: Any])
        let cases = try #require(reference["cases"] as? [String: [String: Any]])
        #expect(cases.count == 24)
        for (name, description) in cases.sorted(by: { $0.key < $1.key }) {
            let kind = String(name.prefix(while: { $0 != "/" }))
            let variant = try #require(description["variant"] as? String)
            let steps = try #require(description["steps"] as? Int)
            let eta = Float(description["eta"] as? Double ?? 0)
            var scheduler = try Self.make(kind, try Self.config(try #require(variants[variant])), steps: steps, eta: eta)
            let noises = try file.names.filter { $0.hasPrefix("\(name)/noise/") }
                .sorted { Int($0.split(separator: "/").last!)! < Int($1.split(separator: "/").last!)! }
                .map { try file.tensor($0) }
            var random: any RandomSource = ReplayRandom(noises: noises)
            var sample = try file.tensor("\(name)/sample")
            let rungeKutta = name == "pndm/linear"
            #expect(scheduler.timesteps.count == (rungeKutta ? 12 + steps - 3 : kind == "pndm" ? steps + 1 : steps), "\(name)")
            for step in scheduler.timesteps.indices {
                let at = "\(name) step \(step)"
                if kind == "lms" {
                    expectClose(scheduler.scaleModelInput(sample, stepIndex: step), try file.tensor("\(name)/\(step)/model_input"),
                                tolerance: 1e-6, "\(at) model input")
                } else {
                    #expect(scheduler.scaleModelInput(sample, stepIndex: step).toArray() == sample.toArray(), "\(at) model input")
                }
                let output = scheduler.step(modelOutput: try file.tensor("\(name)/\(step)/model_output"), stepIndex: step,
                                            sample: sample, random: &random)
                expectClose(output.prevSample, try file.tensor("\(name)/\(step)/prev_sample"), tolerance: 1e-5, "\(at) prev_sample")
                if file.entries["\(name)/\(step)/pred_original"] != nil {
                    expectClose(output.predictedOriginal, try file.tensor("\(name)/\(step)/pred_original"),
                                tolerance: 1e-5, "\(at) pred_original")
                }
                sample = try file.tensor("\(name)/\(step)/prev_sample")
            }
            #expect((random as? ReplayRandom)?.drawn == noises.count, "\(name): noise draws")
            #expect(noises.isEmpty == !(kind == "ddpm" || eta > 0), "\(name): stochastic cases have noise")
        }
    }

    static func decode(_ json: String) -> Result<SchedulerConfig, SchedulerError> {
        Result { () throws(SchedulerError) in try SchedulerConfig.decode(json: Data(json.utf8)) }
    }

    @Test func refusesWhatItDoesNotImplement() throws {
        #expect(Self.decode(#"{"thresholding": true}"#) == .failure(.unsupported(key: "thresholding", value: "true")))
        #expect(Self.decode(#"{"beta_schedule": "sigmoid"}"#) == .failure(.unsupported(key: "beta_schedule", value: "sigmoid")))
        #expect(Self.decode(#"{"prediction_type": "flow_prediction"}"#)
            == .failure(.unsupported(key: "prediction_type", value: "flow_prediction")))
        #expect(Self.decode(#"{"timestep_spacing": "karras"}"#) == .failure(.unsupported(key: "timestep_spacing", value: "karras")))
        #expect(Self.decode(#"{"rescale_betas_zero_snr": true}"#) == .failure(.unsupported(key: "rescale_betas_zero_snr", value: "true")))
        #expect(Self.decode(#"{"num_train_timesteps": "many"}"#) == .failure(.invalid(key: "num_train_timesteps", reason: "expected Int")))
        #expect(Self.decode(#"{"trained_betas": [0.1, 0.2]}"#)
            == .failure(.invalid(key: "trained_betas", reason: "2 values for 1000 train timesteps")))
        // Unknown keys and nulls are fine, as in diffusers.
        #expect(try Self.decode(#"{"future_key": [1, {"a": 2}], "timestep_spacing": null, "thresholding": false}"#).get() == SchedulerConfig())

        let sd15 = try SchedulerConfig(path: Fixtures.path("schedulers_a/sd15_scheduler_config.json"))
        var withPRK = sd15
        withPRK.skipPrkSteps = false
        #expect(throws: SchedulerError.self) { try PNDMScheduler(config: withPRK, steps: 3) }
        var learned = sd15
        learned.varianceType = "learned_range"
        #expect(throws: SchedulerError.unsupported(key: "variance_type", value: "learned_range")) { try DDPMScheduler(config: learned, steps: 10) }
        var karras = sd15
        karras.useKarrasSigmas = true
        #expect(throws: SchedulerError.unsupported(key: "use_karras_sigmas", value: "true")) { try LMSDiscreteScheduler(config: karras, steps: 10) }
    }

    @Test func refusesImpossibleStepCounts() throws {
        let sd15 = try SchedulerConfig(path: Fixtures.path("schedulers_a/sd15_scheduler_config.json"))
        for kind in Self.kinds {
            for steps in [0, -3, 1001] {
                #expect(throws: SchedulerError.self, "\(kind) \(steps)") { try Self.make(kind, sd15, steps: steps) }
            }
        }
        // leading 2 steps with steps_offset 600 would index past the 1000 train steps.
        var offset = sd15
        offset.stepsOffset = 600
        offset.timestepSpacing = .leading
        // numpy's arange gives diffusers 62 trailing timesteps for 61, the last one -1. Both are
        // fatal where alphas_cumprod is indexed; LMS interpolates sigmas and clamps, as diffusers.
        var trailing = sd15
        trailing.timestepSpacing = .trailing
        for kind in ["ddim", "pndm", "ddpm"] {
            #expect(throws: SchedulerError.self, "\(kind) offset") { try Self.make(kind, offset, steps: 2) }
            #expect(throws: SchedulerError.self, "\(kind) trailing 61") { try Self.make(kind, trailing, steps: 61) }
        }
        let lms = try LMSDiscreteScheduler(config: trailing, steps: 61)
        let alpha0 = trailing.alphasCumprod[0]
        #expect(lms.timesteps.count == 62 && lms.timesteps.last == -1 && lms.sigmas[61] == ((1 - alpha0) / alpha0).squareRoot())
        #expect(throws: SchedulerError.self) { try DDIMScheduler(config: sd15, steps: 10, eta: -1) }
    }

    @Test func factoryFollowsTheModelsClassName() throws {
        #expect(SchedulerKind.allCases.map(\.rawValue) == ["ddim", "pndm", "euler", "euler-a", "dpm++2m", "dpm++2m-karras", "lms", "ddpm",
                                                           "heun", "dpm++sde", "dpm++sde-karras", "unipc", "lcm", "tcd"])
        let sd15 = try SchedulerConfig(path: Fixtures.path("schedulers_a/sd15_scheduler_config.json"))
        #expect(try SchedulerKind(defaultFor: sd15) == .pndm)
        let classes: [(String, Bool, SchedulerKind)] = [
            ("DDIMScheduler", false, .ddim), ("EulerDiscreteScheduler", true, .euler),
            ("EulerAncestralDiscreteScheduler", false, .eulerAncestral), ("DPMSolverMultistepScheduler", false, .dpmSolverMultistep),
            ("DPMSolverMultistepScheduler", true, .dpmSolverMultistepKarras), ("LMSDiscreteScheduler", false, .lms),
            ("DDPMScheduler", false, .ddpm), ("HeunDiscreteScheduler", false, .heun), ("DPMSolverSDEScheduler", false, .dpmSolverSDE),
            ("DPMSolverSDEScheduler", true, .dpmSolverSDEKarras), ("UniPCMultistepScheduler", false, .unipc),
            ("LCMScheduler", false, .lcm), ("TCDScheduler", false, .tcd),
        ]
        for (name, karras, kind) in classes {
            var config = sd15
            config.className = name
            config.useKarrasSigmas = karras
            #expect(try SchedulerKind(defaultFor: config) == kind, "\(name)")
        }
        var unknown = sd15
        unknown.className = "DEISMultistepScheduler"
        #expect(throws: SchedulerError.unknownClass("DEISMultistepScheduler")) { try SchedulerKind(defaultFor: unknown) }
        unknown.className = nil
        #expect(throws: SchedulerError.self) { try SchedulerKind(defaultFor: unknown) }

        // Every kind runs from the SD 1.5 config; the factory builds the same schedule as the type itself.
        for kind in SchedulerKind.allCases {
            let scheduler = try makeScheduler(kind: kind, config: sd15, steps: 20)
            // PNDM repeats its warm-up timestep; second-order samplers visit two per step but the last.
            #expect(scheduler.timesteps.count == (kind == .pndm ? 21 : scheduler.order == 2 ? 39 : 20), "\(kind)")
        }
        #expect(try makeScheduler(kind: .lms, config: sd15, steps: 20).timesteps == LMSDiscreteScheduler(config: sd15, steps: 20).timesteps)
        #expect(try makeScheduler(kind: .ddim, config: sd15, steps: 20) is DDIMScheduler)
        #expect(try makeScheduler(kind: .dpmSolverMultistepKarras, config: sd15, steps: 20).timesteps
            != makeScheduler(kind: .dpmSolverMultistep, config: sd15, steps: 20).timesteps)
        #expect(try makeScheduler(kind: .dpmSolverSDEKarras, config: sd15, steps: 20).timesteps
            != makeScheduler(kind: .dpmSolverSDE, config: sd15, steps: 20).timesteps)
        #expect(try makeScheduler(kind: .heun, config: sd15, steps: 20).order == 2)
    }
}
