import Foundation
import Sfumato
import Testing

/// Image to image against diffusers 0.42.1 (Tests/Reference/fixtures_img2img.py): every sampler's
/// add_noise and shortened schedule, the VAE's seeded sample, and StableDiffusionImg2ImgPipeline end to end.
@Suite struct ImageToImageTests {
    static func initImage() throws -> RGBImage { try readPNG(path: Fixtures.path("img2img/init.png")) }

    /// Each case: the timesteps left after get_timesteps, add_noise at the first of them, then the
    /// remaining steps on the stored model outputs (the inputs the UNet would see checked on the way).
    @Test func schedulersStartWhereDiffusersStarts() throws {
        let file = try Fixtures.file("img2img/schedulers.safetensors")
        let text = try #require(file.metadata["cases"])
        let cases = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
        let config = try SchedulerConfig(path: Fixtures.path("schedulers_a/sd15_scheduler_config.json"))
        #expect(cases.count == 24)
        for entry in cases {
            let name = try #require(entry["scheduler"] as? String), key = try #require(entry["key"] as? String)
            let steps = try #require(entry["steps"] as? Int), strength = try #require(entry["strength"] as? Double)
            var scheduler = try makeScheduler(kind: try #require(SchedulerKind(rawValue: name)), config: config, steps: steps)
            let begin = imageToImageBeginIndex(steps: steps, strength: strength)
            let expected = try file.tensor("\(key)/timesteps").toArray()
            #expect(scheduler.timesteps[begin...].map { Float($0) } == expected, "\(key) timesteps")

            var sample = scheduler.addNoise(try file.tensor("\(key)/original"), noise: try file.tensor("\(key)/noise"), stepIndex: begin)
            expectClose(sample, try file.tensor("\(key)/noisy"), tolerance: 1e-6, "\(key) add_noise")
            var random: any RandomSource = TorchRandom(seed: 7)
            for offset in 0..<expected.count {
                let index = begin + offset
                expectClose(scheduler.scaleModelInput(sample, stepIndex: index), try file.tensor("\(key)/\(offset)/model_input"),
                            tolerance: 1e-5, "\(key) step \(offset) model input")
                sample = scheduler.step(modelOutput: try file.tensor("\(key)/\(offset)/model_output"), stepIndex: index,
                                        sample: sample, random: &random).prevSample
            }
            expectClose(sample, try file.tensor("\(key)/final"), tolerance: 1e-5, "\(key) final sample")
        }
    }

    @Test func beginIndexFollowsGetTimesteps() {
        #expect(imageToImageBeginIndex(steps: 10, strength: 1) == 0)
        #expect(imageToImageBeginIndex(steps: 10, strength: 0.55) == 5)  // int(5.5) = 5 steps run
        #expect(imageToImageBeginIndex(steps: 10, strength: 0.7) == 3)  // 10 * 0.7 = 7.000000000000001
        #expect(imageToImageBeginIndex(steps: 10, strength: 0.3) == 7)  // 10 * 0.3 = 3.0000000000000004
        #expect(imageToImageBeginIndex(steps: 10, strength: 0) == 10)
    }

    /// The encoder's sample is mean + std * noise with the noise drawn as diffusers' `latent_dist.sample(generator)`.
    @Test func vaeSampleMatchesDiffusers() throws {
        let vae = try AutoencoderKL(config: try AutoencoderKLConfig(contentsOf: Fixtures.path("tiny/vae/config.json")),
                                    weights: try Fixtures.file("tiny/vae/diffusion_pytorch_model.safetensors"))
        let file = try Fixtures.file("img2img/vae_sample.safetensors")
        let distribution = try vae.encode(try Self.initImage().normalizedTensor())
        expectClose(distribution.mean, try file.tensor("mean"), tolerance: 1e-4, "latent mean")
        var random = TorchRandom(seed: UInt64(try #require(file.metadata["seed"]))!)
        expectClose(distribution.sample(using: &random), try file.tensor("sample"), tolerance: 1e-4, "latent sample")
    }

    @Test(arguments: ["pndm", "euler-a", "dpm++2m-karras", "ddim"])
    func drawsWhatDiffusersDraws(scheduler: String) throws {
        let pipeline = try PipelineTests.pipeline.get()
        let file = try Fixtures.file("img2img/\(scheduler).safetensors")
        let meta = file.metadata
        let request = GenerationRequest(
            prompt: try #require(meta["prompt"]), negativePrompt: meta["negative_prompt"] ?? "",
            steps: Int(try #require(meta["steps"]))!, guidanceScale: Float(try #require(meta["guidance_scale"]))!,
            seed: UInt64(try #require(meta["seed"]))!, scheduler: SchedulerKind(rawValue: scheduler),
            initImage: try Self.initImage(), strength: Double(try #require(meta["strength"]))!)
        var reported: [Int] = []
        let latents = try pipeline.generateLatents(request) { progress in
            reported.append(progress.totalSteps)
            return true
        }
        // Only the last int(steps * strength) steps run (PNDM: of its steps + 1 timesteps).
        let timesteps = request.steps + (scheduler == "pndm" ? 1 : 0)
        let expectedSteps = timesteps - imageToImageBeginIndex(steps: request.steps, strength: request.strength)
        #expect(reported == Array(repeating: expectedSteps, count: expectedSteps))
        expectClose(latents, try file.tensor("latents"), tolerance: 1e-3, "\(scheduler) latents")

        let image = try pipeline.decode(latents)
        let reference = try file.tensor("pixels")
        #expect(reference.shape == [image.height, image.width, 3])
        let close = zip(image.pixels, reference.toArray()).filter { abs(Float($0) - $1) <= 2 }.count
        let share = Double(close) / Double(reference.count)
        #expect(share >= 0.99, "\(scheduler): only \(share * 100)% of pixel values within 2 levels of diffusers")
    }

    @Test func refusesBadRequests() throws {
        let pipeline = try PipelineTests.pipeline.get()
        let image = try Self.initImage()
        let odd = try RGBImage(width: 52, height: 32, pixels: [UInt8](repeating: 9, count: 52 * 32 * 3))
        let cases: [(GenerationRequest, String)] = [
            (GenerationRequest(prompt: "x", initImage: image, strength: 1.5), "strength must be between 0 and 1, not 1.5"),
            (GenerationRequest(prompt: "x", initImage: image, strength: -0.1), "strength must be between 0 and 1, not -0.1"),
            (GenerationRequest(prompt: "x", initImage: image, strength: .nan), "strength must be between 0 and 1, not nan"),
            (GenerationRequest(prompt: "x", steps: 10, initImage: image, strength: 0.05), "runs no denoising step"),
            (GenerationRequest(prompt: "x", width: 64, initImage: image), "asks for width 64 but the init image's width is 48"),
            (GenerationRequest(prompt: "x", initImage: odd), "init image width must be a positive multiple of 8, not 52"),
        ]
        for (request, message) in cases {
            let error = #expect(throws: GenerationError.self) { try pipeline.validate(request) }
            #expect(error?.description.contains(message) == true, "\(String(describing: error)) should say \(message)")
        }
        // The same size asked explicitly is fine.
        try pipeline.validate(GenerationRequest(prompt: "x", width: 48, height: 32, initImage: image))
    }

    /// A UNet whose input channels are neither the VAE's latent channels nor 2 * latent + 1 (inpainting).
    @Test func refusesUNetWithStrangeInputChannels() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sfumato-unet-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.copyItem(at: Fixtures.root.appendingPathComponent("tiny"), to: folder)
        let configURL = folder.appendingPathComponent("unet/config.json")
        var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any])
        config["in_channels"] = 5
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        let error = #expect(throws: ModelLoadError.self) { try StableDiffusionPipeline(files: try ModelFiles(path: folder.path)) }
        #expect(error?.description.contains("the UNet has 5 input and 4 output channels") == true, "\(String(describing: error))")
    }
}
