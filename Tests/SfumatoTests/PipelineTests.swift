import Foundation
import Sfumato
import Testing

/// Text to image end to end against diffusers' StableDiffusionPipeline on the tiny model
/// (Tests/Reference/fixtures_pipeline.py): same prompt, negative prompt, seed and scheduler.
@Suite struct PipelineTests {
    static let pipeline = Result { try StableDiffusionPipeline(files: try ModelFiles(path: Fixtures.path("tiny"))) }

    @Test(arguments: ["pndm", "euler-a", "dpm++2m-karras", "ddim"])
    func drawsWhatDiffusersDraws(scheduler: String) throws {
        let pipeline = try Self.pipeline.get()
        let file = try Fixtures.file("pipeline/\(scheduler).safetensors")
        let meta = file.metadata
        let request = GenerationRequest(
            prompt: try #require(meta["prompt"]), negativePrompt: meta["negative_prompt"] ?? "",
            steps: Int(try #require(meta["steps"]))!, guidanceScale: Float(try #require(meta["guidance_scale"]))!,
            seed: UInt64(try #require(meta["seed"]))!, width: Int(try #require(meta["width"])),
            height: Int(try #require(meta["height"])), scheduler: SchedulerKind(rawValue: scheduler))
        var steps = 0
        let latents = try pipeline.generateLatents(request) { progress in
            steps = progress.step
            return true
        }
        #expect(steps == (scheduler == "pndm" ? request.steps + 1 : request.steps))
        expectClose(latents, try file.tensor("latents"), tolerance: 1e-3, "\(scheduler) latents")

        let image = try pipeline.decode(latents)
        let reference = try file.tensor("pixels")
        #expect(reference.shape == [image.height, image.width, 3])
        let close = zip(image.pixels, reference.toArray()).filter { abs(Float($0) - $1) <= 2 }.count
        let share = Double(close) / Double(reference.count)
        #expect(share >= 0.99, "\(scheduler): only \(share * 100)% of pixel values within 2 levels of diffusers")
    }

    /// SD 1.5's scheduler_config.json has no timestep_spacing. diffusers' `from_config(pipe.scheduler.config)`
    /// gives a switched sampler its own default then (values the file left out are not carried over):
    /// Euler gets linspace (999, ...), while a file that names "leading" keeps it (801, 601, ...).
    @Test func switchedSamplerSpacingFollowsDiffusers() throws {
        let json = #"{"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "steps_offset": 1}"#
        var config = try SchedulerConfig.decode(json: Data(json.utf8))
        #expect(try makeScheduler(kind: .euler, config: config, steps: 5).timesteps.first == 999)
        #expect(try makeScheduler(kind: .pndm, config: config, steps: 5).timesteps.first == 801)
        config.timestepSpacing = .leading
        #expect(try makeScheduler(kind: .euler, config: config, steps: 5).timesteps == [801, 601, 401, 201, 1])
    }

    @Test func progressCallbackCancels() throws {
        let pipeline = try Self.pipeline.get()
        let request = GenerationRequest(prompt: "a red circle", steps: 5, seed: 1, width: 16, height: 16, scheduler: .euler)
        #expect(throws: GenerationError.cancelled(afterStep: 2)) {
            _ = try pipeline.generateLatents(request) { $0.step < 2 }
        }
    }

    @Test func refusesImpossibleRequests() throws {
        let pipeline = try Self.pipeline.get()
        for request in [
            GenerationRequest(prompt: "x", steps: 0),
            GenerationRequest(prompt: "x", guidanceScale: .nan),
            GenerationRequest(prompt: "x", width: 30, height: 16),
            GenerationRequest(prompt: "x", width: 1 << 20, height: 1 << 20),
        ] {
            #expect(throws: GenerationError.self) { try pipeline.validate(request) }
        }
    }

    /// One pipeline, several tasks at once: each run must equal the same run done alone.
    @Test func concurrentRunsAreIndependent() async throws {
        let pipeline = try Self.pipeline.get()
        let requests = (0..<3).map { GenerationRequest(prompt: "a blue square", steps: 3, seed: UInt64($0), width: 16, height: 16, scheduler: .eulerAncestral) }
        let alone = try requests.map { try pipeline.generateLatents($0).toArray() }
        let together = try await withThrowingTaskGroup(of: (Int, [Float]).self) { group in
            for (index, request) in requests.enumerated() {
                group.addTask { (index, try pipeline.generateLatents(request).toArray()) }
            }
            var results = [[Float]](repeating: [], count: requests.count)
            for try await (index, values) in group { results[index] = values }
            return results
        }
        #expect(alone == together)
    }

    @Test func reportsMissingModelParts() throws {
        #expect(throws: ModelLoadError.self) { try ModelFiles(path: "/nonexistent/model") }
        #expect(throws: ModelLoadError.self) { try ModelFiles(path: Fixtures.path("tiny/unet")) }
    }
}

/// diffusers folders as downloaded with `variant="fp16"`: only `*.fp16.safetensors` weights.
@Suite struct ModelFilesTests {
    @Test func readsFP16VariantFiles() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sfumato-fp16-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.copyItem(at: Fixtures.root.appendingPathComponent("tiny"), to: folder)
        for (component, base) in [("unet", "diffusion_pytorch_model"), ("vae", "diffusion_pytorch_model"), ("text_encoder", "model")] {
            let directory = folder.appendingPathComponent(component)
            try FileManager.default.moveItem(at: directory.appendingPathComponent("\(base).safetensors"),
                                             to: directory.appendingPathComponent("\(base).fp16.safetensors"))
        }
        let variant = try StableDiffusionPipeline(files: try ModelFiles(path: folder.path))
        let original = try PipelineTests.pipeline.get()
        let request = GenerationRequest(prompt: "a red circle", steps: 2, seed: 5, width: 16, height: 16, scheduler: .ddim)
        #expect(try variant.generateLatents(request).toArray() == original.generateLatents(request).toArray())
    }

    @Test func refusesPickledCheckpointsAndStrangeFiles() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sfumato-files-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let pickle = folder.appendingPathComponent("model.ckpt")
        try Data([0x80, 0x02]).write(to: pickle)
        #expect(throws: ModelLoadError.self) { try ModelFiles(path: pickle.path) }
        // A valid safetensors file that is not an SD checkpoint.
        #expect(throws: ModelLoadError.self) { try ModelFiles(path: Fixtures.path("ops/linear.safetensors")) }
        // A single-file SD 1.x checkpoint without a tokenizer beside it.
        let files = try ModelFiles(path: try SD2Tests.checkpoint(key: "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", width: 768))
        let error = #expect(throws: ModelLoadError.self) { try StableDiffusionPipeline(files: files) }
        #expect(error?.description.contains("--tokenizer") == true)
    }
}
